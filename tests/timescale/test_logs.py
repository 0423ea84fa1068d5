"""The logs tables on a real TimescaleDB (WASM): migration ``logs.0001`` makes entries and events
hypertables with 1-day chunks (following the metrics raw table), full-text search runs on them, and
retention drops whole chunks. Rows go in with INSERT: COPY kills the WASM instance (conftest)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.logs import search, storage
from tests.timescale.conftest import ALIAS
from tests.timescale.samples import fetch

pytestmark = pytest.mark.xdist_group("timescale")


@pytest.fixture
def logs_ts(ts: Any) -> Any:
    call_command("migrate", "logs", database=ALIAS, interactive=False, verbosity=0)
    with ts.cursor() as cursor:
        cursor.execute("TRUNCATE logs_entry, logs_event")
    return ts


def insert_entry(ts: Any, when: dt.datetime, message: str, level: str = "info") -> None:
    with ts.cursor() as cursor:
        cursor.execute("INSERT INTO logs_entry (time, organization_id, host, level, message) "
                       "VALUES (%s, 1, 'h', %s, %s)", [when, level, message])


def test_entries_and_events_are_hypertables_with_one_day_chunks(logs_ts: Any) -> None:
    rows = dict(fetch(logs_ts, "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
                               "WHERE hypertable_name IN ('logs_entry', 'logs_event')"))
    assert rows == {"logs_entry": dt.timedelta(days=1), "logs_event": dt.timedelta(days=1)}
    assert storage.is_timescale(logs_ts)


def test_full_text_search_and_highlights_on_timescaledb(logs_ts: Any) -> None:
    now = timezone.now()
    insert_entry(logs_ts, now - dt.timedelta(minutes=2), "disk full on /var", "error")
    insert_entry(logs_ts, now - dt.timedelta(minutes=1), "all good")
    query = search.LogQuery(organization_id=1, start=now - dt.timedelta(hours=1), end=now, q="full",
                            levels=["error"])
    results, next_cursor = search.search_entries(query)
    assert [(e["message"], e["highlight"]) for e in results] == [
        ("disk full on /var", "disk <mark>full</mark> on /var")]
    assert next_cursor is None


def test_retention_drops_whole_chunks(logs_ts: Any) -> None:
    now = timezone.now()
    insert_entry(logs_ts, now - dt.timedelta(days=40), "old")
    insert_entry(logs_ts, now - dt.timedelta(days=1), "recent")
    dropped = storage.drop_before(storage.ENTRIES, now - dt.timedelta(days=30))
    assert len(dropped) == 1
    assert [row[0] for row in fetch(logs_ts, "SELECT message FROM logs_entry")] == ["recent"]
