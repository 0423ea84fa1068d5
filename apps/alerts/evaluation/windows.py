"""Reading reduced values through the one read side (``apps.metrics.read.window``), many series per
statement: the tick batches every rule sharing (organization, metric, window, reducer) into these reads.

Windows up to ``FIBERSTACK_QUERY_RAW_MAX_SECONDS`` (1 day) are read from the raw tier with one step as
long as the window: the step buckets are aligned to the epoch, so [at - window, at] spans two of them,
and the summary (avg, min, max, count, percentiles -- exact ``percentile_disc`` on raw) covers exactly the
range; ``last`` and ``sum`` come from the two step points. Longer windows let the read side pick a rollup
tier (its bucket may reach up to one bucket before the window's start). ``rate`` needs every raw sample
(resets); its reads are sized to stay under the point caps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from apps.alerts.choices import Reducer
from apps.alerts.evaluation.reducers import PERCENTILE_REDUCERS, counter_rate, reduce_answer, window_agg
from apps.metrics import read
from apps.metrics.read.plan import max_points_per_query
from apps.metrics.read.select import max_series_per_query


def raw_max_seconds() -> int:
    return int(getattr(settings, "FIBERSTACK_QUERY_RAW_MAX_SECONDS", 86_400))


def _chunks(ids: Sequence[int], size: int) -> list[Sequence[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), max(size, 1))]


def reduced_values(organization: Any, series_ids: Sequence[int], reducer: str, window_seconds: int,
                   at: dt.datetime) -> dict[int, float | None]:
    """series id -> the reducer over [at - window, at] (None: no data; ``count`` answers 0)."""
    if not series_ids:
        return {}
    start = at - dt.timedelta(seconds=window_seconds)
    if reducer == Reducer.RATE:
        return {sid: counter_rate(points) for sid, points in raw_points(organization, series_ids, start, at).items()}
    tier = "raw" if window_seconds <= raw_max_seconds() else None
    percentiles = [str(reducer)] if reducer in PERCENTILE_REDUCERS else []
    values: dict[int, float | None] = {}
    for chunk in _chunks(list(series_ids), max_series_per_query()):
        answer = read.window(organization, read.Selector(ids=tuple(chunk)), start, at, step=window_seconds,
                             agg=window_agg(reducer), tier=tier, percentiles=percentiles, now=at)
        for sid in chunk:
            values[sid] = reduce_answer(reducer, answer.points.get(sid, []), answer.summary.get(sid, {}))
    return values


def raw_points(organization: Any, series_ids: Sequence[int], start: dt.datetime,
               end: dt.datetime) -> dict[int, list[list[float]]]:
    """Every raw sample of the series over [start, end] (the per-series point cap still applies: a
    counter sampled more often than that over its window is refused by the read side, never truncated)."""
    span = max((end - start).total_seconds(), 1.0)
    # Assume at most one sample a second when sizing chunks against the per-query point cap.
    per_chunk = max(1, min(max_series_per_query(), int(max_points_per_query() // (span + 1))))
    found: dict[int, list[list[float]]] = {sid: [] for sid in series_ids}
    for chunk in _chunks(list(series_ids), per_chunk):
        answer = read.window(organization, read.Selector(ids=tuple(chunk)), start, end, tier="raw", now=end)
        for sid, points in answer.points.items():
            found[sid] = points
    return found


def step_points(organization: Any, series_ids: Sequence[int], start: dt.datetime, end: dt.datetime, step: int,
                agg: str) -> dict[int, list[list[float]]]:
    """Points per ``step`` (the read side picks the coarsest tier that aligns with it), per series."""
    points_per_series = (end - start).total_seconds() / step + 1
    per_chunk = max(1, min(max_series_per_query(), int(max_points_per_query() // points_per_series)))
    found: dict[int, list[list[float]]] = {sid: [] for sid in series_ids}
    for chunk in _chunks(list(series_ids), per_chunk):
        answer = read.window(organization, read.Selector(ids=tuple(chunk)), start, end, step=step, agg=agg, now=end)
        for sid, points in answer.points.items():
            found[sid] = points
    return found
