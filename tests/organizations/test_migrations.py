"""0002_token_scopes both ways: write tokens become ingest tokens, and back; a config token goes back to
read (never to write, which would let it push data it never could)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("organizations", "0001_initial")
AFTER = ("organizations", "0002_token_scopes")


def _apps_at(target: tuple[str, str]):
    return MigrationExecutor(connection).loader.project_state([target]).apps


def _scopes(apps) -> dict[str, str]:
    return dict(apps.get_model("organizations", "AgentToken").objects.values_list("name", "scope"))


def _token(apps, organization, name: str, scope: str, prefix: str) -> None:
    apps.get_model("organizations", "AgentToken").objects.create(
        organization=organization, name=name, scope=scope, prefix=prefix, token_hash="0" * 64)


@pytest.mark.django_db(transaction=True)
def test_token_scopes_migrate_forwards_and_backwards():
    try:
        call_command("migrate", *BEFORE, verbosity=0)
        old = _apps_at(BEFORE)
        organization = old.get_model("organizations", "Organization").objects.create(name="Acme", slug="acme")
        _token(old, organization, "telegraf", "write", "aaaaaaaaaaaa")
        _token(old, organization, "grafana", "read", "bbbbbbbbbbbb")

        call_command("migrate", *AFTER, verbosity=0)
        new = _apps_at(AFTER)
        assert _scopes(new) == {"telegraf": "ingest", "grafana": "read"}
        _token(new, new.get_model("organizations", "Organization").objects.get(), "terraform", "config",
               "cccccccccccc")

        call_command("migrate", *BEFORE, verbosity=0)
        assert _scopes(_apps_at(BEFORE)) == {"telegraf": "write", "grafana": "read", "terraform": "read"}
    finally:
        call_command("migrate", verbosity=0)
