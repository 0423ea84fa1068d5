"""The metrics read side: ``window(organization, selector, start, end, step=, agg=, tier=)`` selects
series, picks the tier and returns points per step plus per-series summaries. It is the only reader of
metric windows -- ``GET /api/v1/metrics``, the seed-compatible ``GET /api/metrics`` and the dashboards
go through it, and so will the alert evaluator -- so tier choice, caps, retention and the stitching of
rollup rows with the newest raw samples (``fetch.rollup_source``) exist once. ``pooled=True`` reads all
selected series as one (e.g. an organization's samples per minute).

Modules: ``params`` (parsing the API's parameters), ``select`` (series selection, tenancy of every
matcher subquery), ``plan`` (tier choice and caps), ``fetch`` (the SQL), ``catalogue`` (how the API
renders a series), ``window`` (the function), ``latest`` (newest value per series: hot tier, then raw).

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

Raw samples of closed days may be compressed (plain PostgreSQL: ``apps.metrics.compression``); every raw
read selects from ``storage.compressed.RAW_SOURCE`` (rows plus the window's decoded chunks, a row winning
a repeated (series_id, time)), so raw points, raw steps, percentiles and the newest minutes of rollup
answers read compressed and row days alike.

The range never reaches further back than the organization's retention for the answering tier
(``retention.visible_since``); the reply's ``start`` is the clamped one."""

from __future__ import annotations

from apps.metrics.read.fetch import POOLED, Answer
from apps.metrics.read.latest import latest
from apps.metrics.read.params import AGGS, PERCENTILES, QueryError
from apps.metrics.read.plan import Plan, PointLimitError
from apps.metrics.read.select import Selector
from apps.metrics.read.window import window

__all__ = ["AGGS", "PERCENTILES", "POOLED", "Answer", "Plan", "PointLimitError", "QueryError", "Selector", "latest",
           "window"]
