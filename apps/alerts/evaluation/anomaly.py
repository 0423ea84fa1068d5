"""Anomaly rules: the current value (the rule's reducer over its window) against a baseline learnt
from ``training_seconds`` before the window -- mean ± k·stddev (sample standard deviation) or median ± k·MAD
(the MAD scaled by 1.4826, so k means the same as with the stddev on normal data) -- optionally seasonal: only
training points within the same hour of previous weeks (± 30 min around ``at`` - n weeks).

Training points are step aggregates read through ``read.window`` with a step that is a rollup tier's
bucket (the window rounded up to 1m/5m/1h/1d, coarser when the training range would exceed
``MAX_TRAINING_POINTS``), so a week of training costs one coarse-tier read, not a week of raw samples.
Direction follows the comparator: ``>``/``>=`` only above the band, ``<``/``<=`` only below it,
``==``/``!=`` both sides. A series with fewer than ``MIN_TRAINING_SAMPLES`` training points (new series,
a seasonal rule younger than a week) gets **no outcome**: there is no baseline to be anomalous against.
The baseline goes into ``Outcome.baseline`` so a person can see why it fired."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Sequence
from typing import Any

from apps.alerts.choices import AnomalyMethod, Comparator, Reducer, Severity
from apps.alerts.evaluation.reducers import counter_rate
from apps.alerts.evaluation.selection import SeriesInfo
from apps.alerts.evaluation.windows import reduced_values, step_points
from apps.alerts.models import AlertRule
from apps.alerts.outcomes import Outcome
from apps.metrics.read import AGGS

MIN_TRAINING_SAMPLES = 10
MAX_TRAINING_POINTS = 5_000
TIER_STEPS = (60, 300, 3600, 86400)
WEEK = 7 * 86400
SEASON_HALF_WIDTH = 1800
MAD_SCALE = 1.4826


def training_step(window_seconds: int, training_seconds: int) -> int:
    for step in TIER_STEPS:
        if step >= window_seconds and training_seconds / step <= MAX_TRAINING_POINTS:
            return step
    return TIER_STEPS[-1]


def seasonal_keep(t: float, at: float, training_start: float) -> bool:
    """Is step point ``t`` within ± 30 min of the same instant n ≥ 1 weeks before ``at``?"""
    weeks = round((at - t) / WEEK)
    return weeks >= 1 and abs(t - (at - weeks * WEEK)) <= SEASON_HALF_WIDTH and t >= training_start


def baseline_of(method: str, samples: Sequence[float], k: float) -> dict[str, Any]:
    if method == AnomalyMethod.MEDIAN_MAD:
        center = statistics.median(samples)
        spread = MAD_SCALE * statistics.median(abs(x - center) for x in samples)
    else:
        center = statistics.fmean(samples)
        spread = statistics.stdev(samples)
    return {"method": method, "center": center, "spread": spread, "lower": center - k * spread,
            "upper": center + k * spread, "k": k}


def judge(value: float, comparator: str, baseline: dict[str, Any]) -> tuple[bool, float]:
    """(anomalous, the bound it is compared with)."""
    lower, upper = baseline["lower"], baseline["upper"]
    if comparator == Comparator.GT:
        return value > upper, upper
    if comparator == Comparator.GE:
        return value >= upper, upper
    if comparator == Comparator.LT:
        return value < lower, lower
    if comparator == Comparator.LE:
        return value <= lower, lower
    if value < lower:
        return True, lower
    return value > upper, upper


def _training_values(reducer: str, points: list[list[float]]) -> list[float]:
    if reducer != Reducer.RATE:
        return [p[1] for p in points if p[1] is not None]
    # Rate training: the counter's per-second increase between consecutive step "last" values.
    return [r for a, b in itertools.pairwise(points) if (r := counter_rate([a, b])) is not None]


def anomaly_outcomes(rule: AlertRule, series: Sequence[SeriesInfo], at: dt.datetime) -> list[Outcome]:
    ids = [s.id for s in series]
    current = reduced_values(rule.organization, ids, rule.reducer, rule.window_seconds, at)
    live = [sid for sid in ids if current.get(sid) is not None]
    if not live:
        return []
    end = at - dt.timedelta(seconds=rule.window_seconds)
    start = at - dt.timedelta(seconds=rule.training_seconds)
    step = training_step(rule.window_seconds, rule.training_seconds)
    agg = "last" if rule.reducer == Reducer.RATE else (rule.reducer if rule.reducer in AGGS else "avg")
    training = step_points(rule.organization, live, start, end, step, agg)
    outcomes = []
    for info in series:
        value = current.get(info.id)
        if value is None:
            continue
        points = training.get(info.id, [])
        if rule.seasonal:
            points = [p for p in points if seasonal_keep(p[0], at.timestamp(), start.timestamp())]
        samples = _training_values(rule.reducer, points)
        if len(samples) < MIN_TRAINING_SAMPLES:
            continue
        baseline = baseline_of(rule.anomaly_method, samples, rule.anomaly_k)
        baseline.update(training_start=start.isoformat(), training_end=end.isoformat(), samples=len(samples),
                        seasonal=rule.seasonal, step=step)
        anomalous, bound = judge(value, rule.comparator, baseline)
        outcomes.append(Outcome(labels=info.labels, value=value,
                                severity=Severity.CRITICAL.value if anomalous else None, threshold=bound,
                                host_id=info.host_id, series_id=info.id, baseline=baseline))
    return outcomes
