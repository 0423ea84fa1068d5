"""Production settings pass Django's deployment checklist with no warning at all, and refuse to start
without a secret key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# Variables a developer's shell may carry that would weaken or change production settings.
DROPPED = ("DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECRET_KEY_FILE", "TOKEN_PEPPER",
           "TOKEN_PEPPER_FILE", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")


def _prod_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in DROPPED}
    env.update({
        "DJANGO_SETTINGS_MODULE": "fiberstack.settings.prod",
        "SECRET_KEY": secrets.token_urlsafe(45),  # 60 random characters
        "ALLOWED_HOSTS": "monitor.example.com",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
    })
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_prod_settings_pass_check_deploy_without_warnings():
    env = _prod_env()
    assert len(env["SECRET_KEY"]) == 60
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output


def test_prod_settings_refuse_to_start_without_a_secret_key():
    env = _prod_env()
    del env["SECRET_KEY"]
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
