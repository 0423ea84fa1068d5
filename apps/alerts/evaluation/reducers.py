"""Pure arithmetic of evaluation: which ``read.window`` aggregate answers a reducer, the per-second rate
of a counter (resets included), comparators and the severity a value earns."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

from apps.alerts.choices import Comparator, Reducer, Severity

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    Comparator.GT: operator.gt, Comparator.GE: operator.ge, Comparator.LT: operator.lt,
    Comparator.LE: operator.le, Comparator.EQ: operator.eq, Comparator.NE: operator.ne,
}

#: Reducers answered by the window's per-series summary (``Answer.summary``) over the whole range.
SUMMARY_REDUCERS = frozenset({Reducer.AVG, Reducer.MIN, Reducer.MAX, Reducer.COUNT,
                              Reducer.P50, Reducer.P95, Reducer.P99})
PERCENTILE_REDUCERS = frozenset({Reducer.P50, Reducer.P95, Reducer.P99})


def window_agg(reducer: str) -> str:
    """The per-step aggregate ``read.window`` is asked for: ``last`` and ``sum`` are read from the step
    points; every other reducer from the summary, which any aggregate carries (``avg`` is the cheapest)."""
    return reducer if reducer in (Reducer.LAST, Reducer.SUM) else "avg"


def reduce_answer(reducer: str, points: Sequence[Sequence[float]], summary: dict[str, float | None]) -> float | None:
    """One series' value from a window answer (points per step, summary over the range); None: no data.
    ``count`` of a silent series is 0, not None: "fewer than N samples" is a legitimate rule."""
    if reducer == Reducer.LAST:
        return points[-1][1] if points else None
    if reducer == Reducer.SUM:
        return math.fsum(p[1] for p in points) if points else None
    if reducer == Reducer.COUNT:
        return float(summary.get("count") or 0)
    value = summary.get(str(reducer))
    return None if value is None else float(value)


def counter_rate(points: Sequence[Sequence[float]]) -> float | None:
    """Per-second increase of a counter over raw ``[[t, v], ...]`` (time order): the sum of the increases
    between consecutive samples, where a drop is a reset and the new value counts as the increase since it
    (Prometheus' ``rate`` without its extrapolation to the window edges), over the span from the first to
    the last sample. Fewer than two samples, or no time between them: None (no rate)."""
    if len(points) < 2:
        return None
    span = points[-1][0] - points[0][0]
    if span <= 0:
        return None
    increase = 0.0
    previous = points[0][1]
    for _, value in points[1:]:
        increase += value - previous if value >= previous else value
        previous = value
    return increase / span


def severity_for(value: float, comparator: str, critical: float | None,
                 warning: float | None) -> tuple[str | None, float | None]:
    """(severity, threshold): critical when the comparison holds against ``critical``, else warning
    against ``warning``, else (None, the critical threshold or the warning one when there is none)."""
    compare = COMPARATORS[comparator]
    if critical is not None and compare(value, critical):
        return Severity.CRITICAL.value, critical
    if warning is not None and compare(value, warning):
        return Severity.WARNING.value, warning
    return None, critical if critical is not None else warning
