"""``window``: the one way to read metric points -- by the query API, the dashboards and (next) the alert
evaluator. Selection, tier choice and fetching are its parts (``select``, ``plan``, ``fetch``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from apps.metrics.read.fetch import Answer, fetch
from apps.metrics.read.plan import choose
from apps.metrics.read.select import Selector, max_series_per_query, select_ids


def window(organization: Any, selector: Selector, start: dt.datetime, end: dt.datetime, *,
           step: int | None = None, agg: str = "avg", tier: str | None = None, percentiles: Sequence[str] = (),
           pooled: bool = False, max_points: int | None = None, now: dt.datetime | None = None) -> Answer:
    """Points of the organization's series that ``selector`` names over [start, end] -- one per ``step``
    seconds aggregated with ``agg`` (raw points when the plan has no step) -- and a summary per series,
    from the tier ``plan.choose`` picks (or ``tier``), never reaching past the organization's retention.

    At most ``FIBERSTACK_QUERY_MAX_SERIES`` series (QueryError on ``name`` beyond) unless ``pooled``: then
    all selected series are read as one (``fetch.POOLED``), whose size does not grow with their number.
    The point caps (``PointLimitError`` with a ``suggested_step``) apply in SQL either way. Callers own the
    transaction and its statement timeout (the API's ``bounded_read``)."""
    ids = select_ids(organization, selector, max_series=None if pooled else max_series_per_query())
    plan = choose(organization, start, end, step, tier, now)
    return fetch(plan, ids, agg, list(percentiles), max_points=max_points, pooled=pooled)
