"""The rollup and retention tasks through a real Celery worker process (broker: the test Redis,
database: the test database), not the eager mode the other tests use."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection

from apps.metrics.rollups.models import RollupState
from apps.metrics.rollups.tiers import TIERS
from fiberstack.celery import app
from tests.celery_worker import CeleryWorker, worker_factory_fixture, worker_fixture  # noqa: F401 (fixtures)
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import BASE, rows, write

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")]


def test_rollup_and_retention_run_in_a_real_worker(org: Any, worker: CeleryWorker) -> None:
    queue, lines = worker.queue, worker.lines
    series = SeriesFactory(organization=org)
    try:
        write(series.id, [(BASE + dt.timedelta(seconds=10 * i), float(i)) for i in range(360)])
        RollupState.objects.create(tier="1m", watermark=BASE - dt.timedelta(minutes=5))
        app.send_task("metrics.rollup", queue=queue)
        worker.wait_for(lambda: RollupState.objects.filter(tier="1d", last_run_at__isnull=False).exists())
        assert sum(r[2] for r in rows("1d", [series.id])) == 360
        assert sum(r[2] for r in rows("1m", [series.id])) == 360
        app.send_task("metrics.apply_retention", queue=queue)
        app.send_task("metrics.compress_chunks", queue=queue)

        def finished() -> bool:
            done = [x for x in list(lines) if "succeeded" in x]
            return all(any(name in x for x in done) for name in ("metrics.apply_retention", "metrics.compress_chunks"))

        worker.wait_for(finished)
        joined = "".join(lines)
        # How many partitions are due depends on what earlier transactional tests left behind.
        assert "raw: keep 7d" in joined and re.search(r"compressed \d+ raw partitions", joined)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM metrics_sample WHERE series_id = %s", [series.id])
            for tier in TIERS:
                cursor.execute(f"DELETE FROM {tier.table} WHERE series_id = %s", [series.id])
