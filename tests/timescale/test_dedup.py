"""One sample per (series, time) on a real TimescaleDB: the hypertable's unique index refuses a repeat in
row and compressed chunks alike, ingest's upsert (apps.metrics.storage.merge) makes the later write win in
both, and migration 0004 removes duplicates stored before the key existed and reverses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.test import override_settings

from apps.metrics import storage
from tests.metrics.migration_helpers import migration_and_parent
from tests.timescale.conftest import ALIAS
from tests.timescale.samples import every_minute, fetch, insert_samples, scalar, upsert_samples

pytestmark = pytest.mark.xdist_group("timescale")

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
OLD_DAY = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)  # compressed by compress_raw_chunks(now=NOW)
RECENT = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC)  # stays a row chunk


def _load_and_compress(ts: Any) -> None:
    from apps.metrics import retention

    insert_samples(ts, every_minute(OLD_DAY, OLD_DAY + dt.timedelta(hours=1), [1, 2], lambda t, sid: 1.0))
    insert_samples(ts, every_minute(RECENT, RECENT + dt.timedelta(hours=1), [1, 2], lambda t, sid: 1.0))
    assert retention.compress_raw_chunks(now=NOW) == 1


def _value(ts: Any, series_id: int, moment: dt.datetime) -> list[tuple[Any, ...]]:
    return fetch(ts, f"SELECT value FROM {storage.TABLE} WHERE series_id = %s AND time = %s", [series_id, moment])


def test_the_raw_index_is_unique(ts: Any) -> None:
    [(definition,)] = fetch(ts, "SELECT indexdef FROM pg_indexes WHERE indexname = %s", [storage.INDEX])
    assert definition.startswith("CREATE UNIQUE INDEX")


@pytest.mark.parametrize("moment", [OLD_DAY + dt.timedelta(minutes=5), RECENT + dt.timedelta(minutes=5)],
                         ids=["compressed chunk", "row chunk"])
def test_a_repeated_key_is_refused(ts: Any, moment: dt.datetime) -> None:
    _load_and_compress(ts)
    with pytest.raises(IntegrityError):
        insert_samples(ts, [(moment, 1, 2.0)])
    assert _value(ts, 1, moment) == [(1.0,)]


def test_the_upsert_keeps_one_row_per_key_and_the_later_write_wins(ts: Any) -> None:
    _load_and_compress(ts)
    before = scalar(ts, f"SELECT count(*) FROM {storage.TABLE}")
    old, recent, new = OLD_DAY + dt.timedelta(minutes=5), RECENT + dt.timedelta(minutes=5), NOW
    upsert_samples(ts, [
        (old, 1, 7.0), (recent, 1, 7.0), (new, 1, 7.0),  # stored keys and a new one, each given twice
        (old, 1, 8.0), (recent, 1, 8.0), (new, 1, 8.0),
        (recent, 2, 1.0),  # an identical retry
    ])
    assert [_value(ts, 1, moment) for moment in (old, recent, new)] == [[(8.0,)]] * 3
    assert _value(ts, 2, recent) == [(1.0,)]
    assert scalar(ts, f"SELECT count(*) FROM {storage.TABLE}") == before + 1


def test_migration_0004_removes_duplicates_and_reverses(ts: Any) -> None:
    from apps.metrics import retention

    _, before = migration_and_parent("metrics", "_sample_unique_series_time")
    old, recent = OLD_DAY + dt.timedelta(minutes=5), RECENT + dt.timedelta(minutes=5)
    try:
        with override_settings(FIBERSTACK_TIMESCALEDB="on"):
            call_command("migrate", "metrics", before, database=ALIAS, interactive=False, verbosity=0)
        for day in (OLD_DAY, RECENT):
            insert_samples(ts, every_minute(day, day + dt.timedelta(hours=1), [1, 2], lambda t, sid: 1.0))
        insert_samples(ts, [(old, 1, 5.0), (recent, 1, 5.0), (old, 1, 6.0), (recent, 1, 6.0)])  # stored 3 times
        assert retention.compress_raw_chunks(now=NOW) == 1
        assert len(_value(ts, 1, old)) == len(_value(ts, 1, recent)) == 3
    finally:
        with override_settings(FIBERSTACK_TIMESCALEDB="on"):
            call_command("migrate", "metrics", database=ALIAS, interactive=False, verbosity=0)
    # One of the copies is kept (compressed chunks have no storage order to go by).
    assert _value(ts, 1, old) in ([(1.0,)], [(5.0,)], [(6.0,)])
    assert _value(ts, 1, recent) in ([(1.0,)], [(5.0,)], [(6.0,)])
    assert scalar(ts, f"SELECT count(*) FROM {storage.TABLE}") == 2 * 2 * 60
    test_the_raw_index_is_unique(ts)
