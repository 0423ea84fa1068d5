"""The SQL of the rollup jobs: one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` per tier step.

* 1m is built from raw samples with ``sketch_sql.build_sketches_sql`` (count/sum/min/max and the values
  or the sketch in one scan) joined to ``DISTINCT ON`` for ``last`` (an arg-max does not decompose per sketch bin).
* 5m/1h/1d merge the finer tier: count and sum add, min/max fold, ``last`` is the last of the latest
  source bucket, and sketches merge bin by bin with ``sketch_sql.merge_sketches_sql`` (exact: a merged
  sketch equals the sketch of the union, so percentiles keep the same error bound at every tier; a bucket
  whose sources all kept their values, few enough, keeps them too).
* The upsert changes a row only when a value differs (``WHERE ... IS DISTINCT FROM``), and the statement
  reports how many rows it inserted or changed and their bucket range. That range is the *dirt* the
  next tier has to merge again, so re-running a job (or re-rolling a lateness window that received
  nothing new) costs the finer tier a scan and the coarser tiers nothing.

* Sums never raise: they saturate at the float8 maximum (``sums.sum_sql``); counts are bigint.

Every statement takes ``%(lo)s``/``%(hi)s`` (source time range, aligned to the target tier's buckets
so each touched bucket is recomputed from all of its source rows) -- and, in the ``only_series``
variant the jobs use to isolate a failing series, ``%(series)s`` (int[]) -- plus the compressed source
of the range: from raw, its samples (``storage.compressed.read_params``), from a tier, its buckets
(``rollups.compressed.read_params``) -- and returns one row
``(changed_rows, min_bucket, max_bucket)``."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from apps.metrics.rollups.compressed import source_sql
from apps.metrics.rollups.storage import COLUMNS
from apps.metrics.rollups.sums import sum_sql
from apps.metrics.rollups.tiers import BY_NAME, RAW_NAME, TierSpec
from apps.metrics.sketch import EXACT_MAX_COUNT
from apps.metrics.sketch_sql import build_sketches_sql, merge_sketches_sql
from apps.metrics.storage.compressed import RAW_SOURCE

_VALUE_COLUMNS = ("count", "sum", "min", "max", "last", "exact_values", "sketch_keys", "sketch_counts")


def _upsert(tier: TierSpec, select: str, with_ctes: str = "") -> str:
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUE_COLUMNS)
    old = ", ".join(f"t.{c}" for c in _VALUE_COLUMNS)
    new = ", ".join(f"EXCLUDED.{c}" for c in _VALUE_COLUMNS)
    prefix = f"WITH {with_ctes}, " if with_ctes else "WITH "
    return f"""{prefix}written AS (
    INSERT INTO {tier.table} AS t ({COLUMNS})
    {select}
    ON CONFLICT (series_id, bucket) DO UPDATE SET {assignments}
    WHERE ({old}) IS DISTINCT FROM ({new})
    RETURNING t.bucket
)
SELECT count(*), min(bucket), max(bucket) FROM written"""  # noqa: S608 - identifiers are ours


_ONLY_SERIES = " AND series_id = ANY(%(series)s)"


def keep_values_up_to() -> int:
    """``FIBERSTACK_ROLLUP_KEEP_VALUES_UP_TO``: the most values a bucket keeps instead of a sketch (0: none).
    Rollups and reads may disagree after a change (rows written before keep their form): every merge takes
    both forms."""
    return max(0, int(getattr(settings, "FIBERSTACK_ROLLUP_KEEP_VALUES_UP_TO", EXACT_MAX_COUNT)))


def rollup_sql(tier_name: str, only_series: bool = False) -> str:
    """The statement that (re)computes ``tier_name``'s buckets whose source rows lie in [lo, hi)
    (of the series in ``%(series)s`` only, with ``only_series``)."""
    return _rollup_sql(tier_name, only_series, keep_values_up_to())


@cache
def _rollup_sql(tier_name: str, only_series: bool, exact_max: int) -> str:
    tier = BY_NAME[tier_name]
    extra = _ONLY_SERIES if only_series else ""
    if tier.source == RAW_NAME:
        return _from_raw(tier, extra, exact_max)
    return _from_tier(tier, BY_NAME[tier.source], extra, exact_max)


def raw_buckets_select(tier: TierSpec, window: str, *, sketches: bool = True, exact_max: int | None = None) -> str:
    """SELECT producing rollup rows (columns in ``storage.COLUMNS`` order) straight from the raw samples
    matching ``window`` (a condition on ``time``/``series_id``): what the 1m job stores, and what queries
    use for the newest minutes a tier has not rolled yet. ``sketches=False`` leaves the values and
    sketch columns NULL, for reads that need no percentile: building sketches is most of the cost of such a read."""
    last = (
        f"SELECT DISTINCT ON (series_id, b) series_id, {tier.bucket_sql('time')} AS b, value "  # noqa: S608
        f"FROM {RAW_SOURCE} AS raw WHERE {window} AND abs(value) < 'Infinity'::float8 ORDER BY series_id, b, time DESC"
    )
    if not sketches:
        return f"""SELECT k.bucket, k.series_id, k.count, k.sum, k.min, k.max, l.value AS last,
        NULL::float8[] AS exact_values, NULL::int[] AS sketch_keys, NULL::int[] AS sketch_counts
    FROM (SELECT series_id, {tier.bucket_sql("time")} AS bucket, count(*)::bigint AS count,
                 {sum_sql("value")} AS sum, min(value) AS min, max(value) AS max
          FROM {RAW_SOURCE} AS raw WHERE {window} AND abs(value) < 'Infinity'::float8 GROUP BY 1, 2) AS k
    JOIN ({last}) AS l ON l.series_id = k.series_id AND l.b = k.bucket"""  # noqa: S608
    sketches_select = build_sketches_sql(
        source=f"(SELECT time, series_id, value FROM {RAW_SOURCE} AS raw WHERE {window})",  # noqa: S608
        bucket_expr=tier.bucket_sql("s.time"),
        with_stats=True,
        exact_max=keep_values_up_to() if exact_max is None else exact_max,
    )
    return f"""SELECT k.bucket, k.series_id, k.count, k.sum, k.min, k.max, l.value AS last,
        k.exact_values, k.sketch_keys, k.sketch_counts
    FROM ({sketches_select}) AS k
    JOIN ({last}) AS l ON l.series_id = k.series_id AND l.b = k.bucket"""  # noqa: S608


def _from_raw(tier: TierSpec, extra: str, exact_max: int) -> str:
    return _upsert(tier, raw_buckets_select(tier, "time >= %(lo)s AND time < %(hi)s" + extra, exact_max=exact_max))


def _from_tier(tier: TierSpec, source: TierSpec, extra: str, exact_max: int) -> str:
    bucket = tier.bucket_sql("r.bucket")
    ctes = f"""src AS MATERIALIZED (
    SELECT * FROM {source_sql(source)} AS r WHERE bucket >= %(lo)s AND bucket < %(hi)s{extra}
), stats AS (
    SELECT r.series_id, {bucket} AS bucket, sum(r.count)::bigint AS count, {sum_sql("r.sum")} AS sum,
           min(r.min) AS min,
           max(r.max) AS max, (array_agg(r.last ORDER BY r.bucket DESC))[1] AS last
    FROM src AS r GROUP BY 1, 2
), sketches AS (
    {merge_sketches_sql(source="src", group_by={"series_id": "s.series_id", "bucket": tier.bucket_sql("s.bucket")},
                        exact_max=exact_max)}
)"""  # noqa: S608
    select = """SELECT st.bucket, st.series_id, st.count, st.sum, st.min, st.max, st.last,
           sk.exact_values, sk.sketch_keys, sk.sketch_counts
    FROM stats AS st JOIN sketches AS sk ON sk.series_id = st.series_id AND sk.bucket = st.bucket"""
    return _upsert(tier, select, ctes)
