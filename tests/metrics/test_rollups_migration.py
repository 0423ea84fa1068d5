"""Migration 0005 both ways: rollup counts become bigint on every tier and its partitions, the quarantine
and invalidation tables appear; reversed, counts are integer again and the tables are gone."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from apps.metrics.rollups.tiers import TIERS

pytestmark = pytest.mark.django_db(transaction=True)


def _count_types() -> set[tuple[str, str]]:
    """(table, type) of ``count`` in every rollup table and partition."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE a.attname = 'count' AND c.relname LIKE 'metrics_rollup\\_%%' AND c.relkind IN ('r', 'p')"
        )
        return set(cursor.fetchall())


def test_0005_forward_and_back() -> None:
    tables = {tier.table for tier in TIERS}
    try:
        call_command("migrate", "metrics", "0004_sample_unique_series_time", verbosity=0, interactive=False)
        before = _count_types()
        assert {t for t, _ in before} >= tables and {kind for _, kind in before} == {"integer"}
        assert not {"metrics_rollupquarantine", "metrics_rollupinvalidation"} & set(
            connection.introspection.table_names())

        call_command("migrate", "metrics", verbosity=0, interactive=False)
        after = _count_types()
        assert {t for t, _ in after} == {t for t, _ in before} and {kind for _, kind in after} == {"bigint"}
        assert {"metrics_rollupquarantine", "metrics_rollupinvalidation"} <= set(
            connection.introspection.table_names())
    finally:
        call_command("migrate", verbosity=0, interactive=False)
