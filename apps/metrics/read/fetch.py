"""Fetching a planned window from PostgreSQL: points per step (or raw points) and per-series summaries,
with the point caps applied in SQL. ``rollup_source`` is the one place that joins a tier's rows before its
watermark with buckets built from raw samples after it; nothing else may re-join them. Raw samples are
always read from ``RAW_SOURCE`` with the chunks of the window decoded (``raw_params``): rows and
compressed days answer alike."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from apps.metrics.read.params import PERCENTILES, QueryError
from apps.metrics.read.plan import Plan, PointLimitError, max_points_per_query, max_points_per_series, step_fitting
from apps.metrics.rollups import compressed as rollup_compressed
from apps.metrics.rollups.sql import keep_values_up_to, raw_buckets_select
from apps.metrics.rollups.storage import COLUMNS
from apps.metrics.rollups.sums import bounded_avg, saturating_sum, sum_sql
from apps.metrics.rollups.tiers import BY_NAME, EPOCH_SQL, RAW_NAME, TIERS
from apps.metrics.sketch_sql import merge_sketches_sql, quantile_sql
from apps.metrics.storage.compressed import EMPTY_PARAMS, RAW_SOURCE, read_params

# avg is computed from (count, sum, min, max) in Python (``sums.bounded_avg``): float8 division in
# PostgreSQL raises on underflow, and a saturated sum needs the [min, max] bound.
_ROLLUP_STEP_AGGS = {
    "avg": "NULL::float8",
    "min": "min(min)",
    "max": "max(max)",
    "sum": sum_sql("sum"),
    "count": "sum(count)::float8",
    "last": "(array_agg(last ORDER BY bucket DESC))[1]",
}
_RAW_STEP_AGGS = {
    "avg": "NULL::float8",
    "min": "min(value)",
    "max": "max(value)",
    "sum": sum_sql("value"),
    "count": "count(*)::float8",
    "last": "(array_agg(value ORDER BY time DESC))[1]",
    **{p: f"percentile_disc({q}) WITHIN GROUP (ORDER BY value)" for p, q in PERCENTILES.items()},
}


# The key of a pooled answer: all selected series read as one (series ids start at 1).
POOLED = 0


@dataclass
class Answer:
    """Points (``[[epoch_seconds, value], ...]``) and summary per series id (``POOLED`` when pooled), the
    plan that answered and the series selected, in the order the API lists them."""

    points: dict[int, list[list[float]]]
    summary: dict[int, dict[str, float | None]]
    plan: Plan
    series_ids: list[int] = field(default_factory=list)


def _stats_summary(rows: list[tuple[int, float, float, float]]) -> dict[str, float | None]:
    """(count, sum, min, max) per bucket -> avg/min/max/count over them."""
    count = sum(r[0] for r in rows)
    total = saturating_sum(r[1] for r in rows)
    lo = min((r[2] for r in rows), default=None)
    hi = max((r[3] for r in rows), default=None)
    return {"avg": bounded_avg(total, count, lo, hi), "min": lo, "max": hi, "count": count}


def fetch(plan: Plan, series_ids: list[int], agg: str, percentiles: list[str], *,
          max_points: int | None = None, pooled: bool = False) -> Answer:
    """Points and summaries of ``series_ids`` as ``plan`` says; ``pooled`` reads them as one series (key
    ``POOLED``: e.g. samples per minute of a whole organization), which needs a step. At most
    ``max_points`` points in all (default ``FIBERSTACK_QUERY_MAX_POINTS``) and
    ``FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES`` per series are read from PostgreSQL; more raise
    ``PointLimitError`` instead of being fetched. The ids must already be scoped to one organization."""
    if pooled and plan.step is None:
        raise QueryError("step", "a pooled window needs a step")
    keys = [POOLED] if pooled else series_ids
    if not series_ids or plan.start > plan.end:
        return Answer({}, {key: _stats_summary([]) | dict.fromkeys(percentiles) for key in keys}, plan,
                      series_ids)
    total = max_points_per_query() if max_points is None else max_points
    # One transaction: the compressed chunks looked up and the rows read are one state (``read_params``).
    # Inside the caller's (the API's ``bounded_read``) that one already is; a savepoint would add two round
    # trips per read and protect nothing, since every caller lets a failed read end its block.
    if connection.in_atomic_block:
        return _fetch(plan, series_ids, agg, percentiles, keys, total, pooled)
    with transaction.atomic():
        return _fetch(plan, series_ids, agg, percentiles, keys, total, pooled)


def _fetch(plan: Plan, series_ids: list[int], agg: str, percentiles: list[str], keys: list[int], total: int,
           pooled: bool) -> Answer:
    if plan.tier == RAW_NAME:
        if plan.step is None:
            answer = _fetch_raw_points(plan, series_ids, total)
        else:
            answer = _fetch_raw_steps(plan, series_ids, agg, total, pooled)
    else:
        answer = _fetch_rollup_steps(plan, series_ids, agg, total, pooled)
    answer.series_ids = series_ids
    for key in keys:
        answer.summary.setdefault(key, _stats_summary([]))
    if percentiles:
        found = _summary_percentiles(plan, series_ids, percentiles, pooled)
        for sid in keys:
            answer.summary[sid].update(found.get(sid, dict.fromkeys(percentiles)))
    return answer


def raw_params(lo: dt.datetime, hi: dt.datetime, series_ids: list[int] | None) -> dict[str, Any]:
    """The parameters ``RAW_SOURCE`` needs for a read of [lo, hi]: the compressed samples in it."""
    with connection.cursor() as cursor:
        return read_params(cursor, lo, hi, series_ids)


def _fetch_raw_points(plan: Plan, series_ids: list[int], total: int) -> Answer:
    # LIMIT per series inside the lateral (the (series_id, time) index stops the scan there) and LIMIT on
    # the whole: one row over a cap is enough to refuse, so a year of raw data costs cap + 1 rows.
    per_series = min(max_points_per_series(), total)
    sql = f"""SELECT i.id, x.t, x.value FROM unnest(%(ids)s::int[]) AS i(id)
        CROSS JOIN LATERAL (SELECT extract(epoch FROM time)::float8 AS t, value FROM {RAW_SOURCE} AS raw
                            WHERE series_id = i.id AND time >= %(start)s AND time <= %(end)s
                            ORDER BY time LIMIT %(per_series)s) AS x
        LIMIT %(total)s"""  # noqa: S608
    params = raw_params(plan.start, plan.end, series_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": sorted(series_ids), "start": plan.start, "end": plan.end,
                             "per_series": per_series + 1, "total": total + 1, **params})
        rows = cursor.fetchall()
    if len(rows) > total:
        fits = step_fitting(plan.start, plan.end, max(total // len(series_ids), 2))
        raise PointLimitError(f"more than {total} raw points for these {len(series_ids)} series in this range: "
                              f"give a step (at least {fits} s) or shorten the range", limit=total,
                              suggested_step=fits)
    points: dict[int, list[list[float]]] = {}
    for sid, t, value in rows:
        points.setdefault(sid, []).append([t, value])
    summary: dict[int, dict[str, float | None]] = {}
    for sid, pts in points.items():
        if len(pts) > per_series:
            fits = step_fitting(plan.start, plan.end, per_series)
            raise PointLimitError(f"more than {per_series} raw points for a series in this range: give a step "
                                  f"(at least {fits} s) or shorten the range", limit=per_series,
                                  suggested_step=fits)
        pts.sort()  # the lateral's order; not guaranteed by SQL without an ORDER BY on the whole
        finite = [v for _, v in pts if math.isfinite(v)]
        summary[sid] = _stats_summary([(len(finite), saturating_sum(finite), min(finite), max(finite))]
                                      if finite else [])
    return Answer(points, summary, plan)


def _raw_rows(pooled: bool) -> tuple[str, str]:
    """The FROM item and the id condition for raw samples of ``%(ids)s``: per series, or as one series."""
    if not pooled:
        return f"{RAW_SOURCE} AS raw", "series_id = ANY(%(ids)s)"
    return (f"(SELECT {POOLED} AS series_id, time, value FROM {RAW_SOURCE} AS raw "  # noqa: S608
            "WHERE series_id = ANY(%(ids)s)) AS pooled", "true")


def _fetch_raw_steps(plan: Plan, series_ids: list[int], agg: str, total: int, pooled: bool) -> Answer:
    step = plan.step
    rows, ids = _raw_rows(pooled)
    sql = f"""SELECT series_id, floor(extract(epoch FROM time)::float8 / %(step)s) * %(step)s AS b,
        count(*), {sum_sql("value")}, min(value), max(value), {_RAW_STEP_AGGS[agg]}
    FROM {rows}
    WHERE {ids} AND time >= %(start)s AND time <= %(end)s AND abs(value) < 'Infinity'::float8
    GROUP BY 1, 2 ORDER BY 1, 2 LIMIT %(limit)s"""  # noqa: S608
    params = {"step": step, "ids": series_ids, "start": plan.start, "end": plan.end,
              **raw_params(plan.start, plan.end, series_ids)}
    return _collect(sql, params, agg, plan, 1 if pooled else len(series_ids), total)


def _step_bucket(step: int) -> str:
    # Grouped as a timestamp and turned into epoch seconds only per output row: floor(extract(...) / step)
    # did numeric division on every rollup row (and psycopg parsed the numeric results as Decimal).
    return f"date_bin(INTERVAL '{int(step)} seconds', bucket, {EPOCH_SQL})"


def rollup_source(tier_name: str, start: dt.datetime, end: dt.datetime, pooled: bool = False, *,
                  series_ids: list[int] | None = None, sketches: bool = True) -> tuple[str, dict[str, Any]]:
    """A subquery of rollup rows for ``%(ids)s`` over [start, end]: the tier's rows before its watermark
    plus 1m rows built on the fly from raw samples after it, so answers include the newest minutes (the
    only place that stitches the two; ``pooled`` relabels every row as series ``POOLED``). The tier's rows
    include its compressed partitions (``rollups.compressed``). ``series_ids`` (what ``%(ids)s`` will be)
    narrows the compressed chunks decoded, of the tier and of raw. ``sketches=False`` (no percentile
    wanted) gives NULL sketch columns: neither read from the tier or its chunks nor built from raw."""
    tier = BY_NAME[tier_name]
    with connection.cursor() as cursor:
        # The watermark rides along with the chunk lookup: one round trip (a plain statement, no ORM).
        watermark, chunks = rollup_compressed.read_params_and_scalar(
            cursor, tier, tier.floor(start), end, series_ids,
            "(SELECT watermark FROM metrics_rollupstate WHERE tier = %s)", [tier_name], sketches=sketches)
    watermark = watermark or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    params: dict[str, Any] = {"start": tier.floor(start), "end": end, "wm": watermark, **EMPTY_PARAMS, **chunks}
    columns = COLUMNS if sketches else COLUMNS.replace(
        "exact_values, sketch_keys, sketch_counts",
        "NULL::float8[] AS exact_values, NULL::int[] AS sketch_keys, NULL::int[] AS sketch_counts")
    stored = (f"SELECT {columns} FROM {rollup_compressed.source_for(tier, chunks)} AS t "  # noqa: S608
              "WHERE series_id = ANY(%(ids)s) AND bucket >= %(start)s AND bucket <= %(end)s AND bucket < %(wm)s")
    source = f"({stored})"
    if watermark <= end:
        fresh = raw_buckets_select(TIERS[0], "series_id = ANY(%(ids)s) AND time >= greatest(%(wm)s, %(start)s) "
                                             "AND time <= %(end)s", sketches=sketches)
        source = f"({stored} UNION ALL {fresh})"
        params.update(raw_params(max(watermark, params["start"]), end, series_ids))
    if pooled:
        source = f"(SELECT {COLUMNS.replace('series_id', f'{POOLED} AS series_id')} FROM {source} AS p)"  # noqa: S608
    return source, params


def _fetch_rollup_steps(plan: Plan, series_ids: list[int], agg: str, total: int, pooled: bool) -> Answer:
    tier = BY_NAME[plan.tier]
    step = int(plan.step or tier.seconds)
    source, params = rollup_source(plan.tier, plan.start, plan.end, pooled, series_ids=series_ids,
                                   sketches=agg in PERCENTILES)
    params["ids"] = series_ids
    if agg in PERCENTILES:
        merged = merge_sketches_sql(
            source=source,
            group_by={"series_id": "s.series_id", "b": _step_bucket(step).replace("bucket", "s.bucket")},
            counts_type="bigint",
            exact_max=keep_values_up_to(),
        )
        sql = f"""SELECT st.series_id, extract(epoch FROM st.b)::bigint, st.c, st.s, st.lo, st.hi,
            {quantile_sql("m.sketch_keys", "m.sketch_counts", "m.exact_values", str(PERCENTILES[agg]))}
        FROM (SELECT series_id, {_step_bucket(step)} AS b, sum(count) AS c, {sum_sql("sum")} AS s, min(min) AS lo,
                     max(max) AS hi
              FROM {source} AS r GROUP BY 1, 2) AS st
        JOIN ({merged}) AS m ON m.series_id = st.series_id AND m.b = st.b
        ORDER BY 1, 2 LIMIT %(limit)s"""  # noqa: S608
    else:
        sql = f"""SELECT series_id, extract(epoch FROM {_step_bucket(step)})::bigint AS b, sum(count), {sum_sql("sum")},
            min(min), max(max), {_ROLLUP_STEP_AGGS[agg]}
        FROM {source} AS r GROUP BY series_id, {_step_bucket(step)} ORDER BY 1, 2 LIMIT %(limit)s"""  # noqa: S608
    return _collect(sql, params, agg, plan, 1 if pooled else len(series_ids), total)


def _collect(sql: str, params: dict[str, Any], agg: str, plan: Plan, series: int, total: int) -> Answer:
    """Run a step query (``LIMIT %(limit)s``) reading at most ``total`` + 1 rows; one more than ``total``
    means the answer would exceed the cap. Averages are computed here from the saturating sum
    (``bounded_avg``), since PostgreSQL's float8 division raises on underflow."""
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "limit": total + 1})
        rows = cursor.fetchall()
    if len(rows) > total:
        fits = max(step_fitting(plan.start, plan.end, max(total // series, 2)), int(plan.step or 1))
        raise PointLimitError(f"more than {total} points for these {series} series: use a larger step (at least "
                              f"{fits} s), a shorter range or fewer series", limit=total, suggested_step=fits)
    points: dict[int, list[list[float]]] = {}
    stats: dict[int, list[tuple[int, float, float, float]]] = {}
    for sid, b, count, sum_, lo, hi, value in rows:
        if agg == "avg":
            value = bounded_avg(sum_, int(count), lo, hi)
        points.setdefault(sid, []).append([int(b), value])
        stats.setdefault(sid, []).append((int(count), sum_, lo, hi))
    return Answer(points, {sid: _stats_summary(rows) for sid, rows in stats.items()}, plan)


def _summary_percentiles(plan: Plan, series_ids: list[int], percentiles: list[str],
                         pooled: bool) -> dict[int, dict[str, Any]]:
    params: dict[str, Any] = {"ids": series_ids, "end": plan.end}
    if plan.tier == RAW_NAME:
        cols = ", ".join(f"percentile_disc({PERCENTILES[p]}) WITHIN GROUP (ORDER BY value)" for p in percentiles)
        params.update(start=plan.start, **raw_params(plan.start, plan.end, series_ids))
        rows, ids = _raw_rows(pooled)
        sql = f"""SELECT series_id, {cols} FROM {rows}
        WHERE {ids} AND time >= %(start)s AND time <= %(end)s AND abs(value) < 'Infinity'::float8
        GROUP BY 1"""  # noqa: S608
    else:
        source, extra = rollup_source(plan.tier, plan.start, plan.end, pooled, series_ids=series_ids)
        params.update(extra)
        merged = merge_sketches_sql(
            source=source,
            group_by={"series_id": "s.series_id"},
            counts_type="bigint",
            exact_max=keep_values_up_to(),
        )
        cols = ", ".join(quantile_sql("m.sketch_keys", "m.sketch_counts", "m.exact_values", str(PERCENTILES[p]))
                         for p in percentiles)
        sql = f"SELECT m.series_id, {cols} FROM ({merged}) AS m"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: dict(zip(percentiles, row[1:], strict=True)) for row in cursor.fetchall()}
