"""`make run` (settings.dev) talks to PostgreSQL the way production does: through the same pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
db = settings.DATABASES["default"]
print(json.dumps({"pool": db["OPTIONS"].get("pool"), "conn_max_age": db["CONN_MAX_AGE"],
                  "pooled": connection.pool is not None}))
"""


def _database_settings(module: str, **extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DB_")}
    env.update(DJANGO_SETTINGS_MODULE=module, SECRET_KEY="settings-test-" + "x" * 50,
               DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL, **extra)
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", PROBE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_make_run_uses_the_production_connection_pool() -> None:
    dev, prod = _database_settings("fiberstack.settings.dev"), _database_settings("fiberstack.settings.prod")
    assert dev == prod == {"pool": {"min_size": 2, "max_size": 8, "timeout": 10}, "conn_max_age": 0,
                           "pooled": True}


@pytest.mark.parametrize("module", ["fiberstack.settings.dev", "fiberstack.settings.prod"])
def test_the_pool_is_sized_from_the_environment_and_can_be_switched_off(module: str) -> None:
    sized = _database_settings(module, DB_POOL_MAX_SIZE="3", DB_POOL_MIN_SIZE="1")
    assert sized["pool"] == {"min_size": 1, "max_size": 3, "timeout": 10}
    off = _database_settings(module, DB_POOL="false", DB_CONN_MAX_AGE="0")
    assert off == {"pool": None, "conn_max_age": 0, "pooled": False}
