"""Helpers shared by the rollup, retention and tier tests: writing raw samples at chosen instants and
reading rollup rows back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.metrics import storage
from apps.metrics.rollups.tiers import BY_NAME
from apps.metrics.sketch import QuantileSketch

# A fixed hour well inside raw retention; runs use NOW so every test sees the same closed buckets.
NOW = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
BASE = NOW - dt.timedelta(hours=2)


def write(series_id: int, points: list[tuple[dt.datetime, float]]) -> None:
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, [int(t.timestamp() * 1_000_000) for t, _ in points], [series_id] * len(points),
                             [v for _, v in points])


def rows(tier: str, series_ids: list[int] | None = None) -> list[tuple[Any, ...]]:
    sql = (f"SELECT bucket, series_id, count, sum, min, max, last, exact_values, sketch_keys, sketch_counts "
           f"FROM {BY_NAME[tier].table}")
    params: list[Any] = []
    if series_ids is not None:
        sql += " WHERE series_id = ANY(%s)"
        params.append(series_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY series_id, bucket", params)
        return cursor.fetchall()


def distribution(row: tuple[Any, ...]) -> QuantileSketch:
    """The sketch of a ``rows`` row's bucket, whether it kept its values or stored the sketch."""
    exact, keys, counts = row[7:10]
    return QuantileSketch.of(exact) if exact is not None else QuantileSketch.from_arrays(keys, counts)


def raw_stats(tier: str, series_ids: list[int]) -> list[tuple[Any, ...]]:
    """The same buckets computed independently over raw with date_bin and plain aggregates."""
    seconds = BY_NAME[tier].seconds
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT date_bin(make_interval(secs => %s), time, 'epoch'::timestamptz) AS b, series_id, count(*), "
            "sum(value), min(value), max(value), (array_agg(value ORDER BY time DESC))[1] "
            "FROM metrics_sample WHERE series_id = ANY(%s) GROUP BY b, series_id ORDER BY series_id, b",
            [seconds, series_ids],
        )
        return cursor.fetchall()
