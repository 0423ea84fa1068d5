"""The rollup and retention tasks through a real Celery worker process (broker: the test Redis,
database: the test database), not the eager mode the other tests use."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from apps.metrics.rollups.models import RollupState
from apps.metrics.rollups.tiers import TIERS
from fiberstack.celery import app
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import BASE, rows, write

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker() -> Any:
    """A solo-pool worker on a private queue, pointed at the test database; stopped (by pid) after."""
    queue = f"fs-test-rollups-{uuid.uuid4().hex[:8]}"
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fiberstack"))
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="fiberstack.settings.test",
               DATABASE_URL=urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])))
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fiberstack", "worker", "--pool", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(lambda: proc.stdout.readline().decode(), "")),
                              daemon=True)
    reader.start()
    try:
        yield queue, proc, lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(predicate: Any, proc: subprocess.Popen, lines: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}: {''.join(lines)[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"timed out; worker log: {''.join(lines)[-3000:]}")


def test_rollup_and_retention_run_in_a_real_worker(org: Any, worker: Any) -> None:
    queue, proc, lines = worker
    series = SeriesFactory(organization=org)
    try:
        write(series.id, [(BASE + dt.timedelta(seconds=10 * i), float(i)) for i in range(360)])
        RollupState.objects.create(tier="1m", watermark=BASE - dt.timedelta(minutes=5))
        app.send_task("metrics.rollup", queue=queue)
        _wait(lambda: RollupState.objects.filter(tier="1d", last_run_at__isnull=False).exists(), proc, lines)
        assert sum(r[2] for r in rows("1d", [series.id])) == 360
        assert sum(r[2] for r in rows("1m", [series.id])) == 360
        app.send_task("metrics.apply_retention", queue=queue)
        app.send_task("metrics.compress_chunks", queue=queue)

        def finished() -> bool:
            done = [x for x in list(lines) if "succeeded" in x]
            return all(any(name in x for x in done) for name in ("metrics.apply_retention", "metrics.compress_chunks"))

        _wait(finished, proc, lines)
        joined = "".join(lines)
        # How many partitions are due depends on what earlier transactional tests left behind.
        assert "raw: keep 7d" in joined and re.search(r"compressed \d+ raw partitions", joined)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM metrics_sample WHERE series_id = %s", [series.id])
            for tier in TIERS:
                cursor.execute(f"DELETE FROM {tier.table} WHERE series_id = %s", [series.id])
