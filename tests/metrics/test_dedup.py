"""A batch sent twice counts once: same series and timestamp is one sample and the later write wins, through
every door (line protocol, JSON, remote_write, collectd) and for every reader (raw table, GET /api/v1/metrics
on raw and rolled-up tiers, GET /api/v1/metrics/latest)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics import hot
from apps.metrics.models import Series
from apps.metrics.rollups import jobs
from tests.metrics.factories import fixture_bytes, fixture_headers, post, sample_count, samples_of

pytestmark = pytest.mark.django_db

# Closed minutes well inside the rollup lateness window (600 s), so re-running the job re-rolls them.
NOW = timezone.now().replace(second=0, microsecond=0)
T0 = NOW - dt.timedelta(minutes=4)
HOSTS = ("web-1", "web-2")
STEPS = 12  # one point every 10 s: two closed minutes


def ns(moment: dt.datetime, seconds: float = 0) -> int:
    return int((moment.timestamp() + seconds) * 1_000_000_000)


def cpu_body(value: Any = lambda host, step: step) -> str:
    """Two hosts, two fields, STEPS instants: 48 values."""
    return "\n".join(
        f"cpu,host={host} usage_user={value(host, step)},usage_idle={100 - step} {ns(T0, 10 * step)}"
        for step in range(STEPS) for host in HOSTS
    ) + "\n"


def write(body: str, token: str) -> None:
    response = post("/write?precision=ns", body, token=token)
    assert response.status_code == 204, response.content


def read(api_client: Any, token: str, **params: Any) -> dict[str, Any]:
    params = {"name": "cpu_usage_user", "start": T0.isoformat(), "end": (T0 + dt.timedelta(minutes=2)).isoformat(),
              **params}
    response = api_client(token=token).get("/api/v1/metrics", params)
    assert response.status_code == 200, response.content
    return {s["host"]: s for s in response.json()["series"]}


def rollup_rows(table: str, org: Any) -> list[tuple[Any, ...]]:
    """(name, bucket, count, sum, last) of ``table``, both hosts added together."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.name, r.bucket, sum(r.count)::int, sum(r.sum), max(r.last) FROM {table} r "
            "JOIN metrics_series s ON s.id = r.series_id WHERE s.organization_id = %s GROUP BY 1, 2 ORDER BY 1, 2",
            [org.pk],
        )
        return cursor.fetchall()


def latest(api_client: Any, token: str, host: str) -> tuple[float, float]:
    response = api_client(token=token).get("/api/v1/metrics/latest", {"name": "cpu_usage_user", "host": host})
    [series] = response.json()["series"]
    return series["time"], series["value"]


def test_the_same_body_posted_twice_is_one_sample_per_series_and_time(
    org: Any, write_token: str, read_token: str, api_client: Any
) -> None:
    write(cpu_body(), write_token)
    jobs.run_rollups(now=NOW)
    first_rollup = rollup_rows("metrics_rollup_1m", org)
    write(cpu_body(), write_token)  # the retry: its reply was lost after COMMIT
    jobs.run_rollups(now=NOW + dt.timedelta(minutes=1))  # re-rolls the lateness window

    assert sample_count(org) == 2 * 2 * STEPS
    assert rollup_rows("metrics_rollup_1m", org) == first_rollup
    assert [(name, count, total) for name, _, count, total, _ in first_rollup] == [
        ("cpu_usage_idle", 12, 2 * sum(100 - s for s in range(6))),
        ("cpu_usage_idle", 12, 2 * sum(100 - s for s in range(6, 12))),
        ("cpu_usage_user", 12, 2 * sum(range(6))),
        ("cpu_usage_user", 12, 2 * sum(range(6, 12))),
    ]
    raw = read(api_client, read_token, tier="raw")
    assert {host: s["summary"]["count"] for host, s in raw.items()} == dict.fromkeys(HOSTS, STEPS)
    per_minute = read(api_client, read_token, tier="1m", step=60, agg="sum")
    assert {host: [p[1] for p in s["points"]] for host, s in per_minute.items()} == {
        host: [sum(range(6)), sum(range(6, 12))] for host in HOSTS
    }
    counts = read(api_client, read_token, tier="1m", step=60, agg="count")
    assert {host: [p[1] for p in s["points"]] for host, s in counts.items()} == {host: [6, 6] for host in HOSTS}


def test_the_same_point_twice_in_one_body_keeps_the_later_line(org: Any, write_token: str) -> None:
    # Out of time order on purpose: the rows are re-sorted before they are stored, and the later line must
    # still win among equal (series, time).
    body = "\n".join([
        f"m,host=a v=5 {ns(T0, 20)}",
        f"m,host=a v=1 {ns(T0, 10)}",
        f"m,host=b v=7 {ns(T0, 10)}",
        f"m,host=a v=2 {ns(T0, 10)}",
    ])
    write(body, write_token)
    series = Series.objects.get(organization=org, name="m_v", labels__host="a")
    assert samples_of(series) == [(T0.timestamp() + 10, 2.0), (T0.timestamp() + 20, 5.0)]
    assert sample_count(org) == 3


def test_json_duplicates_count_as_accepted_and_the_later_item_is_stored(
    org: Any, write_token: str, read_token: str, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """``accepted`` counts the values taken from the body, including one a later item replaced: each was
    accepted and applied in order (an agent comparing accepted with sent must not see a loss)."""
    at = T0.timestamp()
    body = [{"host": "web-1", "name": "cpu_usage_user", "value": value, "time": at} for value in (1, 3, 2)]
    with django_capture_on_commit_callbacks(execute=True):
        response = post("/api/v1/metrics", json.dumps(body), token=write_token, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "rejected": [], "skipped": {}}
    series = Series.objects.get(organization=org, name="cpu_usage_user")
    assert samples_of(series) == [(at, 2.0)]
    assert latest(api_client, read_token, "web-1") == (at, 2.0)


def test_a_retry_with_changed_values_wins_in_raw_rollups_and_latest(
    org: Any, write_token: str, read_token: str, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        write(cpu_body(), write_token)
    jobs.run_rollups(now=NOW)
    newest = T0.timestamp() + 10 * (STEPS - 1)
    assert latest(api_client, read_token, "web-2") == (newest, STEPS - 1)

    with django_capture_on_commit_callbacks(execute=True):
        write(cpu_body(lambda host, step: 1000 + step), write_token)
    jobs.run_rollups(now=NOW + dt.timedelta(minutes=1))

    series = Series.objects.get(organization=org, name="cpu_usage_user", labels__host="web-2")
    assert [v for _, v in samples_of(series)] == [1000.0 + s for s in range(STEPS)]
    assert sample_count(org) == 2 * 2 * STEPS
    rolled = [row for row in rollup_rows("metrics_rollup_1m", org) if row[0] == "cpu_usage_user"]
    assert [(count, total, last) for _, _, count, total, last in rolled] == [
        (12, 2 * sum(1000 + s for s in range(6)), 1005.0),
        (12, 2 * sum(1000 + s for s in range(6, 12)), 1011.0),
    ]
    for table in ("metrics_rollup_5m", "metrics_rollup_1h", "metrics_rollup_1d"):
        coarse = [row for row in rollup_rows(table, org) if row[0] == "cpu_usage_user"]
        assert sum(row[2] for row in coarse) == 24, table
        assert sum(row[3] for row in coarse) == 2 * sum(1000 + s for s in range(STEPS)), table
    assert hot.latest_values(org.pk, [series.id]) == {series.id: (newest, 1000.0 + STEPS - 1)}
    assert latest(api_client, read_token, "web-2") == (newest, 1000.0 + STEPS - 1)


def test_a_retried_older_batch_never_moves_latest_backwards(
    org: Any, write_token: str, read_token: str, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    older = f"cpu,host=web-1 usage_user=1 {ns(T0)}\n"
    newer = f"cpu,host=web-1 usage_user=2 {ns(T0, 10)}\n"
    with django_capture_on_commit_callbacks(execute=True):
        write(older, write_token)
        write(newer, write_token)
        write(older.replace("usage_user=1", "usage_user=9"), write_token)  # the first batch, retried, changed
    assert latest(api_client, read_token, "web-1") == (T0.timestamp() + 10, 2.0)
    series = Series.objects.get(organization=org, name="cpu_usage_user")
    assert samples_of(series) == [(T0.timestamp(), 9.0), (T0.timestamp() + 10, 2.0)]


@pytest.fixture
def _wide_time_window(settings: Any) -> None:
    # The captured fixtures are from 2026-11-21; keep them inside the accepted window whatever the clock says.
    settings.FIBERSTACK_INGEST_MAX_PAST_S = 20 * 365 * 86400
    settings.FIBERSTACK_INGEST_MAX_FUTURE_S = 20 * 365 * 86400


@pytest.mark.usefixtures("_wide_time_window")
def test_a_remote_write_body_sent_twice_is_stored_once(org: Any, write_token: str) -> None:
    for _ in range(2):
        response = post("/api/v1/prom/write", fixture_bytes("prom_rw_01.snappy.pb"), token=write_token,
                        **fixture_headers("prom_rw_01.headers.json"))
        assert response.status_code == 204, response.content
    assert sample_count(org) == 500


@pytest.mark.usefixtures("_wide_time_window")
def test_a_collectd_body_sent_twice_is_stored_once_and_accepted_twice(org: Any, write_token: str) -> None:
    items = json.loads(fixture_bytes("collectd_json_01.body"))
    expected = sum(1 for item in items for value in item["values"] if value is not None)
    for _ in range(2):
        response = post("/api/v1/collectd", fixture_bytes("collectd_json_01.body"), basic=write_token,
                        **fixture_headers("collectd_json_01.headers.json"))
        assert response.status_code == 200, response.content
        assert response.json()["accepted"] == expected
    assert sample_count(org) == expected
