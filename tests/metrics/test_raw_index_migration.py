"""Migration ``raw_index_ascending`` both ways: the raw index turns ascending in time (on the parent and
every partition), stays unique, and going back gives the descending form; samples survive both."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import IntegrityError
from django.utils import timezone

from apps.metrics import storage
from tests.metrics.factories import SeriesFactory
from tests.metrics.migration_helpers import migration_and_parent

pytestmark = pytest.mark.django_db(transaction=True)


def index_definitions() -> set[str]:
    """The raw index's column list on the parent and every partition, e.g. ``(series_id, "time")``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT substring(pg_get_indexdef(i.indexrelid) from '\\(.*\\)'), i.indisunique
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            WHERE c.relname = %s OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)""",
            [storage.TABLE, storage.TABLE],
        )
        rows = cursor.fetchall()
    assert all(unique for _, unique in rows)
    return {definition for definition, _ in rows}


def test_the_raw_index_migration_goes_back_and_forward() -> None:
    name, parent = migration_and_parent("metrics", "_raw_index_ascending")
    series = SeriesFactory()
    at = int((timezone.now() - dt.timedelta(minutes=5)).timestamp() * 1_000_000)
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, [at, at + 10_000_000], [series.id] * 2, [1.0, 2.0])
    try:
        assert index_definitions() == {'(series_id, "time")'}
        call_command("migrate", "metrics", parent, verbosity=0, interactive=False)
        assert index_definitions() == {'(series_id, "time" DESC)'}
        call_command("migrate", "metrics", name, verbosity=0, interactive=False)
        assert index_definitions() == {'(series_id, "time")'}
        with connection.cursor() as cursor:
            cursor.execute("SELECT value FROM metrics_sample WHERE series_id = %s ORDER BY time", [series.id])
            assert [row[0] for row in cursor.fetchall()] == [1.0, 2.0]
            # Still one sample per (series, time).
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute("INSERT INTO metrics_sample (time, series_id, value) "
                               "VALUES (timestamptz 'epoch' + %s * interval '1 microsecond', %s, 3.0)", [at, series.id])
    finally:
        call_command("migrate", verbosity=0, interactive=False)
