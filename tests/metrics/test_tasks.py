"""Beat tasks of the metrics app."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics.storage import partitioned
from apps.metrics.tasks import ensure_partitions

pytestmark = pytest.mark.django_db


def test_ensure_partitions_task_reports_what_it_did(settings) -> None:
    settings.FIBERSTACK_PARTITIONS_AHEAD = 8
    summary = ensure_partitions.delay().get()
    assert summary.startswith("partitioned: ")
    with connection.cursor() as cursor:
        days = partitioned.existing_days(cursor)
    assert timezone.now().date() + dt.timedelta(days=8) in days
    assert ensure_partitions.delay().get() == "partitioned: 0 partitions created, 0 rows moved"


def test_ensure_partitions_skips_when_another_run_holds_the_lock() -> None:
    import psycopg

    from apps.core.locks import ADVISORY_LOCK_KEYS

    settings_dict = connection.settings_dict
    other = psycopg.connect(host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432,
                            user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None,
                            dbname=settings_dict["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEYS["metrics.ensure_partitions"]])
        assert ensure_partitions.delay().get().startswith("skipped")
    finally:
        other.close()
