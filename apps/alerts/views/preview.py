"""The rule form's preview: how often a threshold rule would have fired over the last hours of data,
before it is saved ("would have fired 3 times on 2 of 5 series").

It reads through the metrics read side (``apps.metrics.read.window``), one point per ``window`` seconds
reduced with the rule's reducer -- tumbling windows where the evaluator slides one, and without resolve
hysteresis -- so it is an estimate that says so, not a replay of the evaluator."""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError

from apps.alerts.choices import RuleKind
from apps.alerts.models import AlertRule
from apps.core.db import is_statement_timeout, statement_timeout
from apps.metrics import read

PREVIEW_HOURS = 6
MIN_STEP_SECONDS = 60
STATEMENT_TIMEOUT_MS = 5000
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}


@dataclass
class Preview:
    """What the form shows under the preview button."""

    hours: int
    step: int = 0
    series: int = 0
    fired: int = 0
    critical: int = 0
    series_fired: int = 0
    message: str = ""
    notes: list[str] = field(default_factory=list)


def _rates(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """Per-second increase between consecutive ``last`` values; a drop is a counter reset, skipped."""
    out = []
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t1 > t0 and v1 >= v0:
            out.append((t1, (v1 - v0) / (t1 - t0)))
    return out


def count_firings(points: Sequence[Sequence[float]], rule: AlertRule) -> tuple[int, int]:
    """(times the rule went from quiet to firing, how many of those reached critical) over ``points``."""
    compare = COMPARE[rule.comparator]
    lowest = rule.warning if rule.warning is not None else rule.critical
    fired = critical = 0
    pending_since: float | None = None
    firing = reached_critical = False
    for t, value in points:
        if value is None or lowest is None or not compare(value, lowest):
            pending_since, firing = None, False
            continue
        pending_since = t if pending_since is None else pending_since
        if not firing and t - pending_since >= rule.for_seconds:
            firing, reached_critical = True, False
            fired += 1
        if firing and not reached_critical and rule.critical is not None and compare(value, rule.critical):
            reached_critical = True
            critical += 1
    return fired, critical


def preview_rule(organization: Any, rule: AlertRule, *, now: dt.datetime) -> Preview:
    """Estimate the unsaved ``rule``'s firings over the last PREVIEW_HOURS hours."""
    preview = Preview(hours=PREVIEW_HOURS)
    if rule.kind != RuleKind.THRESHOLD:
        preview.message = "The preview covers threshold rules; absence and anomaly rules are not previewed."
        return preview
    preview.step = max(rule.window_seconds or 0, MIN_STEP_SECONDS)
    agg = "last" if rule.reducer == "rate" else rule.reducer
    selector = read.Selector(name=rule.metric, host=None, labels=rule.label_matchers or None, match=())
    try:
        with statement_timeout(STATEMENT_TIMEOUT_MS):
            answer = read.window(organization, selector, now - dt.timedelta(hours=PREVIEW_HOURS), now,
                                 step=preview.step, agg=agg)
    except read.QueryError as exc:
        preview.message = f"Cannot preview: {exc.message}"
        return preview
    except OperationalError as exc:
        if not is_statement_timeout(exc):
            raise
        preview.message = "Cannot preview: reading the data took too long; narrow the matchers."
        return preview
    preview.series = len(answer.series_ids)
    for series_id in answer.series_ids:
        points = answer.points.get(series_id, [])
        series_points = _rates(points) if rule.reducer == "rate" else points
        fired, critical = count_firings(series_points, rule)
        preview.fired += fired
        preview.critical += critical
        preview.series_fired += 1 if fired else 0
    if rule.host_environment or rule.host_tags or rule.host_names:
        preview.notes.append("Host filters (environment, tags, names) are not applied in the preview.")
    if rule.resolve_threshold is not None or rule.keep_firing_for_seconds:
        preview.notes.append("Resolve hysteresis is not applied: flapping counts as several firings.")
    return preview
