"""Writing test samples into TimescaleDB without COPY (``COPY ... FROM STDIN`` kills the WASM instance):
one INSERT ... SELECT FROM unnest(arrays) per call, which is also fast there (10,000 rows in about
0.3 s, where executemany needs about 2.5 ms per row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from apps.metrics.storage import TABLE


def insert_samples(connection: Any, rows: Iterable[tuple[dt.datetime, int, float]]) -> int:
    """Insert (time, series_id, value) rows into the raw samples table; returns the row count."""
    times: list[dt.datetime] = []
    series: list[int] = []
    values: list[float] = []
    for time, series_id, value in rows:
        times.append(time)
        series.append(series_id)
        values.append(value)
    if not times:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (time, series_id, value) "
            "SELECT * FROM unnest(%s::timestamptz[], %s::integer[], %s::double precision[])",
            [times, series, values],
        )
    return len(times)


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
