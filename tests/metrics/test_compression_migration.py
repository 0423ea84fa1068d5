"""The compressed-chunk table's migration both ways: back, the table is gone and the read side's SQL
would fail; forward, it is back with its key and time index."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from tests.metrics.migration_helpers import migration_and_parent

pytestmark = pytest.mark.django_db(transaction=True)


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'metrics_sample_compressed'")
        return {row[0] for row in cursor.fetchall()}


def test_the_compressed_table_migration_goes_back_and_forward() -> None:
    name, parent = migration_and_parent("metrics", "_compressed_raw_chunks")
    try:
        call_command("migrate", "metrics", parent, verbosity=0, interactive=False)
        assert "metrics_sample_compressed" not in connection.introspection.table_names()
        call_command("migrate", "metrics", name, verbosity=0, interactive=False)
        assert "metrics_sample_compressed" in connection.introspection.table_names()
        assert _indexes() == {"metrics_sample_compressed_pkey", "metrics_sample_compressed_first_time"}
    finally:
        call_command("migrate", verbosity=0, interactive=False)
