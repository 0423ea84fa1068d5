"""Writing test samples into TimescaleDB without COPY (``COPY ... FROM STDIN`` kills the WASM instance):
one INSERT ... SELECT FROM unnest(arrays) per call, which is also fast there (10,000 rows in about
0.3 s, where executemany needs about 2.5 ms per row). ``upsert_samples`` runs ingest's upsert statement
(apps.metrics.storage.merge), which takes its rows as arrays too."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction

from apps.metrics.storage import TABLE, merge
from apps.metrics.storage.common import sort_rows


def _columns(rows: Iterable[tuple[dt.datetime, int, float]]) -> list[list[Any]]:
    times: list[dt.datetime] = []
    series: list[int] = []
    values: list[float] = []
    for time, series_id, value in rows:
        times.append(time)
        series.append(series_id)
        values.append(value)
    return [times, series, values]


def _insert(cursor: Any, table: str, columns: list[list[Any]]) -> None:
    cursor.execute(
        f"INSERT INTO {table} (time, series_id, value) "
        "SELECT t, s, v FROM unnest(%s::timestamptz[], %s::integer[], %s::double precision[]) "
        "WITH ORDINALITY AS r(t, s, v, n) ORDER BY n",
        columns,
    )


def insert_samples(connection: Any, rows: Iterable[tuple[dt.datetime, int, float]]) -> int:
    """Insert (time, series_id, value) rows into the raw samples table; returns the row count."""
    columns = _columns(rows)
    if not columns[0]:
        return 0
    with connection.cursor() as cursor:
        _insert(cursor, TABLE, columns)
    return len(columns[0])


def upsert_samples(connection: Any, rows: Iterable[tuple[dt.datetime, int, float]]) -> None:
    """Write rows the way ingest does once a key is already stored: sorted stably, then merged (one row per
    series and time, the later one winning) in one transaction."""
    times, series, values = _columns(rows)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    times_us = [(time - epoch) // dt.timedelta(microseconds=1) for time in times]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        merge.merge_rows(cursor, *sort_rows(times_us, series, values))


def every_minute(
    start: dt.datetime, end: dt.datetime, series_ids: Sequence[int], value: Any = None
) -> list[tuple[dt.datetime, int, float]]:
    """One sample per minute per series over [start, end); ``value(time, series_id)`` or a ramp."""
    out = []
    moment = start
    index = 0
    while moment < end:
        for sid in series_ids:
            out.append((moment, sid, float(value(moment, sid)) if value else float(index % 97 + sid)))
        moment += dt.timedelta(minutes=1)
        index += 1
    return out


def fetch(connection: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def scalar(connection: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
    rows = fetch(connection, sql, params)
    return rows[0][0] if rows else None


def tsbs_walk(start: dt.datetime, ticks: int, interval: dt.timedelta, series_ids: Sequence[int],
              seed: int = 1) -> list[tuple[dt.datetime, int, float]]:
    """TSBS "devops cpu-only" values (bench/_tsbs.py): per series a random walk from U[0, 100) with N(0, 1)
    steps, clamped to [0, 100] and written as an integer, one sample per ``interval``."""
    rng = random.Random(seed)
    state = {sid: rng.random() * 100.0 for sid in series_ids}
    out = []
    for tick in range(ticks):
        moment = start + tick * interval
        for sid in series_ids:
            state[sid] = min(100.0, max(0.0, state[sid] + rng.gauss(0.0, 1.0)))
            out.append((moment, sid, float(int(state[sid]))))
    return out
