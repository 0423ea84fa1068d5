"""The suite's own isolation: what a transactional test (live server, real worker, browser) writes is gone
before the next test, including the time-series tables that are made by SQL rather than by models."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from apps.metrics.rollups import jobs
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import BASE, rows, write


@pytest.mark.django_db(transaction=True)
def test_the_flush_after_a_transactional_test_empties_samples_and_rollups(org: Any) -> None:
    series = SeriesFactory(organization=org)
    write(series.id, [(BASE, 1.0)])
    jobs.run_rollups()  # the sample's closed minutes reach the rollup tiers
    assert rows("1m", [series.id])
    call_command("flush", interactive=False)  # what pytest-django runs after a transactional test
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM metrics_sample) + (SELECT count(*) FROM metrics_rollup_1m)")
        assert cursor.fetchone()[0] == 0
