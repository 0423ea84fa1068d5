"""Reading metrics from the best tier: which tier answers a range, points per step, and per-series
summaries. Used by ``GET /api/v1/metrics`` and the seed-compatible ``GET /api/metrics``.

Tier choice (``choose``):

* ``tier=raw|1m|5m|1h|1d`` forces a tier (without ``step``, a rollup tier answers one point per bucket).
* Otherwise, with ``step``: among raw and the tiers whose bucket is at most ``step`` (preferring those
  whose bucket divides ``step``, which align exactly), the COARSEST one whose retention -- for the asking
  organization -- covers ``start``; when none covers it, the one that keeps data longest.
* Without ``step``: raw points when raw covers ``start`` and the range is at most
  ``FIBERSTACK_QUERY_RAW_MAX_SECONDS`` (default 1 day); else a step is chosen -- the smallest tier bucket
  giving at most ``FIBERSTACK_QUERY_AUTO_POINTS`` (default 1,000) points -- and the rule above applies.

A step bucket is ``floor(epoch / step) * step``; a tier bucket belongs to the step bucket of its start,
so a step that is not a multiple of the tier's bucket is answered at the tier's resolution. Rollup tiers
hold closed minutes up to their watermark (at most about one rollup run behind, see ``/readyz``);
samples that arrive later than the lateness window reach them with the run that re-rolls their
minutes (``invalidation``; pending ranges are in ``/readyz`` too).

Points are capped per series at ``FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES`` (default 11,000, like
Prometheus) and per query at ``FIBERSTACK_QUERY_MAX_POINTS`` (default 500,000). The caps are applied in
SQL before anything is fetched -- raw points read at most cap + 1 rows per series (``LIMIT`` in a lateral
subquery) and every query at most its total cap + 1 rows -- so a huge range costs at most the cap. A
query over a cap is refused (``PointLimitError``: 400 naming ``step``, with ``limit`` and a
``suggested_step`` that fits), never silently truncated or widened.

Aggregates: avg, min, max, sum, count, last exactly from the bucket statistics (a sum beyond the float8
range is answered as ±1.7976931348623157e308, an average as sum / count kept within the step's
[min, max]: ``sums`` says why; JSON cannot carry Infinity); p50/p95/p99 from merged
quantile sketches on rollup tiers -- within ``sketch.RELATIVE_ACCURACY`` (0.99 %) of the exact
``percentile_disc`` value -- and exactly (``percentile_disc``) on raw. The summary per series (avg, min,
max, count, and the requested percentiles) covers the whole answered range from the same tier.

The range never reaches further back than the organization's retention for the answering tier
(``retention.visible_since``); the reply's ``start`` is the clamped one."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.metrics import retention
from apps.metrics.query import QueryError
from apps.metrics.rollups.sql import raw_buckets_select
from apps.metrics.rollups.storage import COLUMNS
from apps.metrics.rollups.sums import bounded_avg, saturating_sum, sum_sql
from apps.metrics.rollups.tiers import BY_NAME, EPOCH_SQL, RAW_NAME, TIER_NAMES, TIERS
from apps.metrics.sketch_sql import merge_sketches_sql, quantile_sql
from apps.metrics.storage import TABLE as RAW_TABLE

PERCENTILES: dict[str, float] = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
AGGS: tuple[str, ...] = ("avg", "min", "max", "sum", "count", "last", *PERCENTILES)


def max_points_per_series() -> int:
    return int(getattr(settings, "FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES", 11_000))


def max_points_per_query() -> int:
    return int(getattr(settings, "FIBERSTACK_QUERY_MAX_POINTS", 500_000))


class PointLimitError(QueryError):
    """A query would return more points than a cap allows. Carries the cap and, where one exists, the
    smallest step that fits it, so a client can retry with that step instead of guessing."""

    def __init__(self, message: str, *, limit: int, suggested_step: int | None, parameter: str = "step") -> None:
        super().__init__(parameter, message)
        self.limit = limit
        self.suggested_step = suggested_step
        self.extra = {"limit": limit, "suggested_step": suggested_step}


def step_fitting(start: dt.datetime, end: dt.datetime, points: int) -> int:
    """The smallest whole step that gives at most ``points`` buckets over [start, end]."""
    span = max((end - start).total_seconds(), 0.0)
    return max(1, math.ceil(span / max(points - 1, 1)))


def parse_agg(value: str | None) -> str:
    agg = (value or "avg").lower()
    if agg not in AGGS:
        raise QueryError("agg", f"agg must be one of {', '.join(AGGS)}, not {value!r}")
    return agg


def parse_tier(value: str | None) -> str | None:
    if not value:
        return None
    if value not in TIER_NAMES:
        raise QueryError("tier", f"tier must be one of {', '.join(TIER_NAMES)}, not {value!r}")
    return value


def parse_percentiles(value: str | None, agg: str) -> list[str]:
    """``percentiles=p50,p99`` for the summary; a percentile ``agg`` is always included."""
    wanted = [p.strip().lower() for p in (value or "").split(",") if p.strip()]
    for p in wanted:
        if p not in PERCENTILES:
            raise QueryError("percentiles", f"percentiles must be among {', '.join(PERCENTILES)}, not {p!r}")
    if agg in PERCENTILES and agg not in wanted:
        wanted.append(agg)
    return sorted(set(wanted), key=list(PERCENTILES).index)


@dataclass(frozen=True, slots=True)
class Plan:
    """What answers a query: the tier, the step (None: raw points) and the clamped range."""

    tier: str
    step: int | None
    start: dt.datetime
    end: dt.datetime


def _bucket_seconds(tier: str) -> int:
    return 0 if tier == RAW_NAME else BY_NAME[tier].seconds


def choose(organization: Any, start: dt.datetime, end: dt.datetime, step: int | None, forced: str | None,
           now: dt.datetime | None = None) -> Plan:
    now = now or timezone.now()
    since = {name: retention.visible_since(organization, name, now) for name in TIER_NAMES}
    if forced is not None:
        tier = forced
        if step is not None and tier != RAW_NAME and step < _bucket_seconds(tier):
            raise QueryError("step", f"step must be at least the {tier} bucket ({_bucket_seconds(tier)} s)")
        if step is None and tier != RAW_NAME:
            step = _bucket_seconds(tier)
    else:
        span = (end - start).total_seconds()
        raw_max = int(getattr(settings, "FIBERSTACK_QUERY_RAW_MAX_SECONDS", 86_400))
        if step is None and (start < since[RAW_NAME] or span > raw_max):
            auto = int(getattr(settings, "FIBERSTACK_QUERY_AUTO_POINTS", 1_000))
            step = next((t.seconds for t in TIERS if span / t.seconds <= auto), TIERS[-1].seconds)
        if step is None:
            tier = RAW_NAME
        else:
            candidates = [RAW_NAME, *(t.name for t in TIERS if t.seconds <= step)]
            aligned = [c for c in candidates if c == RAW_NAME or step % _bucket_seconds(c) == 0]
            covering = [c for c in aligned if since[c] <= start] or [c for c in candidates if since[c] <= start]
            tier = covering[-1] if covering else min(candidates, key=lambda c: since[c])
    _check_points(start, end, step)
    return Plan(tier=tier, step=step, start=max(start, since[tier]), end=end)


def _check_points(start: dt.datetime, end: dt.datetime, step: int | None) -> None:
    if step is None:
        return
    points = (end - start).total_seconds() / step + 1
    cap = max_points_per_series()
    if points > cap:
        fits = step_fitting(start, end, cap)
        raise PointLimitError(f"{math.ceil(points)} points per series exceed the limit of {cap}: use a step of "
                              f"at least {fits} s", limit=cap, suggested_step=fits)


# -- fetching ---------------------------------------------------------------------------------------------

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


@dataclass
class Answer:
    """Points and summary per series id."""

    points: dict[int, list[list[float]]]
    summary: dict[int, dict[str, float | None]]


def _stats_summary(rows: list[tuple[int, float, float, float]]) -> dict[str, float | None]:
    """(count, sum, min, max) per bucket -> avg/min/max/count over them."""
    count = sum(r[0] for r in rows)
    total = saturating_sum(r[1] for r in rows)
    lo = min((r[2] for r in rows), default=None)
    hi = max((r[3] for r in rows), default=None)
    return {"avg": bounded_avg(total, count, lo, hi), "min": lo, "max": hi, "count": count}


def fetch(plan: Plan, series_ids: list[int], agg: str, percentiles: list[str], *,
          max_points: int | None = None) -> Answer:
    """Points and summaries of ``series_ids`` as ``plan`` says. At most ``max_points`` points in all
    (default ``FIBERSTACK_QUERY_MAX_POINTS``) and ``FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES`` per series
    are read from PostgreSQL; more raise ``PointLimitError`` instead of being fetched."""
    if not series_ids or plan.start > plan.end:
        return Answer({}, {sid: _stats_summary([]) | dict.fromkeys(percentiles) for sid in series_ids})
    total = max_points_per_query() if max_points is None else max_points
    if plan.tier == RAW_NAME:
        if plan.step is None:
            answer = _fetch_raw_points(plan, series_ids, total)
        else:
            answer = _fetch_raw_steps(plan, series_ids, agg, total)
    else:
        answer = _fetch_rollup_steps(plan, series_ids, agg, total)
    for sid in series_ids:
        answer.summary.setdefault(sid, _stats_summary([]))
    if percentiles:
        found = _summary_percentiles(plan, series_ids, percentiles)
        for sid in series_ids:
            answer.summary[sid].update(found.get(sid, dict.fromkeys(percentiles)))
    return answer


def _fetch_raw_points(plan: Plan, series_ids: list[int], total: int) -> Answer:
    # LIMIT per series inside the lateral (the (series_id, time) index stops the scan there) and LIMIT on
    # the whole: one row over a cap is enough to refuse, so a year of raw data costs cap + 1 rows.
    per_series = min(max_points_per_series(), total)
    sql = f"""SELECT i.id, x.t, x.value FROM unnest(%(ids)s::int[]) AS i(id)
        CROSS JOIN LATERAL (SELECT extract(epoch FROM time)::float8 AS t, value FROM {RAW_TABLE}
                            WHERE series_id = i.id AND time >= %(start)s AND time <= %(end)s
                            ORDER BY time LIMIT %(per_series)s) AS x
        LIMIT %(total)s"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": sorted(series_ids), "start": plan.start, "end": plan.end,
                             "per_series": per_series + 1, "total": total + 1})
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
    return Answer(points, summary)


def _fetch_raw_steps(plan: Plan, series_ids: list[int], agg: str, total: int) -> Answer:
    step = plan.step
    sql = f"""SELECT series_id, floor(extract(epoch FROM time)::float8 / %(step)s) * %(step)s AS b,
        count(*), {sum_sql("value")}, min(value), max(value), {_RAW_STEP_AGGS[agg]}
    FROM {RAW_TABLE}
    WHERE series_id = ANY(%(ids)s) AND time >= %(start)s AND time <= %(end)s AND abs(value) < 'Infinity'::float8
    GROUP BY 1, 2 ORDER BY 1, 2 LIMIT %(limit)s"""  # noqa: S608
    return _collect(sql, {"step": step, "ids": series_ids, "start": plan.start, "end": plan.end}, agg, plan,
                    len(series_ids), total)


def _step_bucket(step: int) -> str:
    # Grouped as a timestamp and turned into epoch seconds only per output row: floor(extract(...) / step)
    # did numeric division on every rollup row (and psycopg parsed the numeric results as Decimal).
    return f"date_bin(INTERVAL '{int(step)} seconds', bucket, {EPOCH_SQL})"


def tier_watermark(tier: str) -> dt.datetime | None:
    """Rows of ``tier`` hold exactly the samples before this instant (late data aside)."""
    # A plain statement rather than the ORM: read once per query, and compiling it cost as much as running it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT watermark FROM metrics_rollupstate WHERE tier = %s", [tier])
        row = cursor.fetchone()
    return row[0] if row else None


def rollup_source(tier_name: str, start: dt.datetime, end: dt.datetime) -> tuple[str, dict[str, Any]]:
    """A subquery of rollup rows for ``ids`` over [start, end]: the tier's rows before its watermark plus
    1m rows built on the fly from raw samples after it, so answers include the newest minutes."""
    tier = BY_NAME[tier_name]
    watermark = tier_watermark(tier_name) or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    params = {"start": tier.floor(start), "end": end, "wm": watermark}
    stored = (f"SELECT {COLUMNS} FROM {tier.table} WHERE series_id = ANY(%(ids)s) "  # noqa: S608
              "AND bucket >= %(start)s AND bucket <= %(end)s AND bucket < %(wm)s")
    if watermark > end:
        return f"({stored})", params
    fresh = raw_buckets_select(TIERS[0], "series_id = ANY(%(ids)s) AND time >= greatest(%(wm)s, %(start)s) "
                                         "AND time <= %(end)s")
    return f"({stored} UNION ALL {fresh})", params


def _fetch_rollup_steps(plan: Plan, series_ids: list[int], agg: str, total: int) -> Answer:
    tier = BY_NAME[plan.tier]
    step = int(plan.step or tier.seconds)
    source, params = rollup_source(plan.tier, plan.start, plan.end)
    params["ids"] = series_ids
    if agg in PERCENTILES:
        merged = merge_sketches_sql(
            source=source,
            group_by={"series_id": "s.series_id", "b": _step_bucket(step).replace("bucket", "s.bucket")},
            counts_type="bigint",
        )
        sql = f"""SELECT st.series_id, extract(epoch FROM st.b)::bigint, st.c, st.s, st.lo, st.hi,
            {quantile_sql("m.sketch_keys", "m.sketch_counts", str(PERCENTILES[agg]))}
        FROM (SELECT series_id, {_step_bucket(step)} AS b, sum(count) AS c, {sum_sql("sum")} AS s, min(min) AS lo,
                     max(max) AS hi
              FROM {source} AS r GROUP BY 1, 2) AS st
        JOIN ({merged}) AS m ON m.series_id = st.series_id AND m.b = st.b
        ORDER BY 1, 2 LIMIT %(limit)s"""  # noqa: S608
    else:
        sql = f"""SELECT series_id, extract(epoch FROM {_step_bucket(step)})::bigint AS b, sum(count), {sum_sql("sum")},
            min(min), max(max), {_ROLLUP_STEP_AGGS[agg]}
        FROM {source} AS r GROUP BY series_id, {_step_bucket(step)} ORDER BY 1, 2 LIMIT %(limit)s"""  # noqa: S608
    return _collect(sql, params, agg, plan, len(series_ids), total)


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
    return Answer(points, {sid: _stats_summary(rows) for sid, rows in stats.items()})


def _summary_percentiles(plan: Plan, series_ids: list[int], percentiles: list[str]) -> dict[int, dict[str, Any]]:
    params: dict[str, Any] = {"ids": series_ids, "end": plan.end}
    if plan.tier == RAW_NAME:
        cols = ", ".join(f"percentile_disc({PERCENTILES[p]}) WITHIN GROUP (ORDER BY value)" for p in percentiles)
        params["start"] = plan.start
        sql = f"""SELECT series_id, {cols} FROM {RAW_TABLE}
        WHERE series_id = ANY(%(ids)s) AND time >= %(start)s AND time <= %(end)s AND abs(value) < 'Infinity'::float8
        GROUP BY 1"""  # noqa: S608
    else:
        source, extra = rollup_source(plan.tier, plan.start, plan.end)
        params.update(extra)
        merged = merge_sketches_sql(
            source=source,
            group_by={"series_id": "s.series_id"},
            counts_type="bigint",
        )
        cols = ", ".join(quantile_sql("m.sketch_keys", "m.sketch_counts", str(PERCENTILES[p])) for p in percentiles)
        sql = f"SELECT m.series_id, {cols} FROM ({merged}) AS m"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: dict(zip(percentiles, row[1:], strict=True)) for row in cursor.fetchall()}
