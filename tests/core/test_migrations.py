"""Every migration of our apps is reversible: each app goes to zero and back, and the models match
the migrations. Apps added later are picked up from the migration graph, not from a list here."""

from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader


def _our_apps() -> list[str]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(label for label in loader.migrated_apps
                  if django_apps.get_app_config(label).name.startswith("apps."))


def _model_tables(label: str) -> set[str]:
    return {model._meta.db_table for model in django_apps.get_app_config(label).get_models()
            if model._meta.managed and not model._meta.proxy}


def _unapplied() -> list:
    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_every_app_migrates_to_zero_and_back():
    labels = _our_apps()
    assert {"audit", "organizations"} <= set(labels)
    try:
        for label in labels:
            # `migrate <app> zero` also unapplies the apps that depend on it (audit and every domain app
            # depend on organizations), so each round trip also reverses those.
            call_command("migrate", label, "zero", verbosity=0, interactive=False)
            left = _model_tables(label) & set(connection.introspection.table_names())
            assert not left, f"{label} zero left tables behind: {sorted(left)}"
            call_command("migrate", verbosity=0, interactive=False)
            assert _model_tables(label) <= set(connection.introspection.table_names())
    finally:
        call_command("migrate", verbosity=0, interactive=False)
    assert _unapplied() == []


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", *_our_apps(), "--check", "--dry-run", verbosity=0)
