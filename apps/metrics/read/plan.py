"""Planning a window: which tier answers a range at which step, the point caps, and the clamped range
(the rules are in ``apps.metrics.read``'s docstring)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.metrics import retention
from apps.metrics.read.params import QueryError
from apps.metrics.rollups.tiers import BY_NAME, RAW_NAME, TIER_NAMES, TIERS


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
