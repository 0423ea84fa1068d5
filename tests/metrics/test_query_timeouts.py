"""The API statement timeout: a read that PostgreSQL cancels answers 503 JSON with Retry-After, and the
limit never outlives the request's transaction on the connection it used."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics.storage import TABLE
from tests.metrics.factories import SeriesFactory

END = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=1)
START = END - dt.timedelta(minutes=40)
ROWS = 480_000  # one sample every 5 ms over 40 minutes: a p99 per second over it takes far longer than 30 ms


def session_state() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_setting('statement_timeout')")
        return cursor.fetchone()


@pytest.fixture
def heavy(org: Any) -> Iterator[Any]:
    """A series with enough raw samples that aggregating them is slow for real (no sleep, no hook)."""
    series = SeriesFactory(organization=org, name="heavy")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (time, series_id, value) "
            "SELECT %s + make_interval(secs => i * 0.005), %s, random() FROM generate_series(0, %s - 1) AS i",
            [START, series.id, ROWS],
        )
    yield series
    with connection.cursor() as cursor:  # the raw table is no model: a transactional test's flush skips it
        cursor.execute(f"DELETE FROM {TABLE} WHERE series_id = %s", [series.id])


def slow_query(**extra: Any) -> dict[str, Any]:
    return {"name": "heavy", "start": int(START.timestamp()), "end": int(END.timestamp()), "step": 1,
            "agg": "p99", "tier": "raw", **extra}


@pytest.mark.django_db(transaction=True)
def test_a_read_over_the_statement_timeout_answers_503_and_the_limit_does_not_stay(
        settings: Any, heavy: Any, api_client: Any, read_token: str) -> None:
    settings.FIBERSTACK_API_STATEMENT_TIMEOUT_MS = 30
    client = api_client(token=read_token)
    pid, before = session_state()
    response = client.get("/api/v1/metrics", slow_query())
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["reason"] == "statement_timeout" and body["timeout_ms"] == 30
    assert "Narrow it" in body["detail"]
    assert response["Retry-After"] == "5"
    # Same backend (the test client keeps the connection, as the pool does): the SET LOCAL ended with
    # the request's transaction.
    assert session_state() == (pid, before)
    # The connection is usable: the next (cheap) read on it succeeds.
    assert client.get("/api/v1/series", {"name": "heavy"}).status_code == 200
    assert session_state() == (pid, before)


@pytest.mark.django_db(transaction=True)
def test_a_successful_read_leaves_no_limit_behind(settings: Any, org: Any, api_client: Any,
                                                  read_token: str) -> None:
    settings.FIBERSTACK_API_STATEMENT_TIMEOUT_MS = 60_000
    SeriesFactory(organization=org, name="light")
    pid, before = session_state()
    response = api_client(token=read_token).get("/api/v1/series", {"name": "light"})
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    assert session_state() == (pid, before) and before == "0"


@pytest.mark.django_db
def test_inside_an_outer_transaction_the_previous_limit_is_put_back(settings: Any, org: Any, api_client: Any,
                                                                    read_token: str) -> None:
    # pytest-django's transaction wraps the request: the view's block is a savepoint, released on success.
    settings.FIBERSTACK_API_STATEMENT_TIMEOUT_MS = 1234
    seen: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "metrics_series" in sql:
            with context["connection"].connection.cursor() as raw:
                raw.execute("SHOW statement_timeout")
                seen.append(raw.fetchone()[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        assert api_client(token=read_token).get("/api/v1/metrics/latest").status_code == 200
    assert seen and set(seen) == {"1234ms"}
    assert session_state()[1] == "0"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/series", "/api/v1/metrics", "/api/v1/metrics/latest"])
def test_a_regex_postgres_rejects_is_400_and_the_next_read_works(org: Any, api_client: Any, read_token: str,
                                                                  path: str) -> None:
    SeriesFactory(organization=org, name="x", labels={"a": "b"})
    client = api_client(token=read_token)
    response = client.get(path, {"labels": 'a=~"b{1,1000}"'})  # Python accepts it; PostgreSQL's limit is 255
    assert response.status_code == 400, response.content
    assert response.json()["parameter"] == "labels"
    assert client.get(path, {"labels": 'a=~"b"'}).status_code == 200


def statements_of(run: Any) -> list[tuple[str, bool]]:
    """(SQL, whether it ran inside a transaction) of every statement ``run()`` sends."""
    seen: list[tuple[str, bool]] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql, context["connection"].in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        run()
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_metrics_read_runs_in_the_timeout_transaction_without_a_savepoint(org: Any, api_client: Any,
                                                                            read_token: str) -> None:
    # The read side's own transaction (chunk lookup and rows: one state) is the timeout's; a savepoint
    # inside it cost two round trips per read.
    SeriesFactory(organization=org, name="cpu")
    client = api_client(token=read_token)
    query = {"name": "cpu", "start": int(START.timestamp()), "end": int(END.timestamp()), "step": 60, "agg": "max"}
    response = None

    def read() -> None:
        nonlocal response
        response = client.get("/api/v1/metrics", query)

    seen = statements_of(read)
    assert response is not None and response.status_code == 200 and response.json()["tier"] == "1m"
    reads = [(sql, inside) for sql, inside in seen if "metrics_rollup" in sql or "metrics_series" in sql]
    assert len(reads) >= 3 and all(inside for _, inside in reads)
    assert not [sql for sql, _ in seen if "SAVEPOINT" in sql.upper()]


@pytest.mark.django_db(transaction=True)
def test_a_window_read_outside_any_transaction_still_reads_in_one(org: Any) -> None:
    from apps.metrics import read

    series = SeriesFactory(organization=org, name="cpu")
    seen = statements_of(lambda: read.window(org, read.Selector(ids=(series.id,)), START, END, step=60, agg="max"))
    rollup = [inside for sql, inside in seen if "metrics_rollup" in sql]
    assert len(rollup) >= 2 and all(rollup)
