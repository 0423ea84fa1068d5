"""The evaluation engine: ``evaluate_rules`` turns rules into ``Outcome``s (reads only, no side
effects), batching every threshold rule that shares (organization, metric, window, reducer) into one
read; ``run_rules`` applies them through ``services.lifecycle.record_chunk`` (the whole chunk at once)
and keeps each rule's schedule and error state.

A rule that raises -- while selecting, reading or recording -- is recorded as errored (``last_error``,
``last_error_at``, ``consecutive_errors``) and pushed forward (crash-loop guard) without stopping the
others: a failed shared read is retried rule by rule, so one rule's failure stays its own."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.alerts.choices import RuleKind
from apps.alerts.evaluation.absence import host_absence, series_absence
from apps.alerts.evaluation.anomaly import anomaly_outcomes
from apps.alerts.evaluation.reducers import severity_for
from apps.alerts.evaluation.selection import MetricSeries, SeriesInfo, load_metric_series, needs_sql, select
from apps.alerts.evaluation.windows import reduced_values
from apps.alerts.models import AlertRule
from apps.alerts.outcomes import Outcome
from apps.alerts.services import lifecycle
from apps.core.db import statement_timeout
from apps.organizations.models import Organization

logger = logging.getLogger(__name__)

#: Backoff of a rule that keeps raising: its interval doubled per consecutive error, at most this long.
MAX_ERROR_BACKOFF_SECONDS = 300


class RuleError(ValueError):
    """A rule that cannot be evaluated as configured (recorded as the rule's error)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation of a rule: ``complete`` -- the outcomes cover every label set the rule sees now
    (label sets without data are simply absent, so the lifecycle treats their open alerts as clear)."""

    outcomes: list[Outcome]
    complete: bool = True


def evaluate_rule(rule: AlertRule, at: dt.datetime) -> Evaluation:
    """Evaluate one rule at ``at``; raises what the rule raises. Reads only."""
    result = evaluate_rules([rule], at)[rule.pk]
    if isinstance(result, Exception):
        raise result
    return result


def evaluate_rules(rules: Sequence[AlertRule], at: dt.datetime) -> dict[int, Evaluation | Exception]:
    """rule id -> its Evaluation, or the exception it raised. Never raises for one rule's sake."""
    results: dict[int, Evaluation | Exception] = {}
    loaded: dict[tuple[int, str], MetricSeries] = {}
    groups: dict[tuple[int, str, int, str], list[tuple[AlertRule, list[SeriesInfo]]]] = defaultdict(list)
    for rule in rules:
        try:
            if rule.kind == RuleKind.ABSENCE and not rule.metric:
                with bounded():
                    results[rule.pk] = Evaluation(host_absence(rule, at))
                continue
            if not rule.metric:
                raise RuleError(f"a {rule.kind} rule needs a metric")
            key = (rule.organization_id, rule.metric)
            if key not in loaded:
                with bounded():
                    loaded[key] = load_metric_series(*key)
            if rule.kind == RuleKind.THRESHOLD:
                if rule.critical is None and rule.warning is None:
                    raise RuleError("a threshold rule needs a critical or a warning threshold")
                with bounded() if needs_sql(rule) else nullcontext():
                    series = select(rule, loaded[key])
                groups[(rule.organization_id, rule.metric, rule.window_seconds, rule.reducer)].append((rule, series))
            elif rule.kind == RuleKind.ABSENCE:
                with bounded():
                    results[rule.pk] = Evaluation(series_absence(rule, select(rule, loaded[key]), at))
            elif rule.kind == RuleKind.ANOMALY:
                with bounded():
                    results[rule.pk] = Evaluation(anomaly_outcomes(rule, select(rule, loaded[key]), at))
            else:
                raise RuleError(f"unknown rule kind {rule.kind!r}")
        except Exception as exc:
            results[rule.pk] = exc
    for (_, _, window, reducer), members in groups.items():
        ids = sorted({s.id for _, ss in members for s in ss})
        try:
            with bounded():
                values = reduced_values(members[0][0].organization, ids, reducer, window, at)
        except Exception:
            logger.warning("shared read of %d threshold rules failed; retrying them one by one", len(members),
                           exc_info=True)
            for rule, series in members:
                try:
                    with bounded():
                        own = reduced_values(rule.organization, [s.id for s in series], reducer, window, at)
                    results[rule.pk] = Evaluation(threshold_outcomes(rule, series, own))
                except Exception as exc:
                    results[rule.pk] = exc
            continue
        for rule, series in members:
            results[rule.pk] = Evaluation(threshold_outcomes(rule, series, values))
    return results


def statement_timeout_ms() -> int:
    return int(getattr(settings, "FIBERSTACK_ALERTS_STATEMENT_TIMEOUT_MS", 5_000))


def bounded() -> AbstractContextManager[None]:
    """Every evaluation statement runs under a statement timeout (in its own short transaction), so one
    pathological rule (a regex over millions of series) costs at most that, recorded as its error."""
    return statement_timeout(statement_timeout_ms())


def threshold_outcomes(rule: AlertRule, series: Iterable[SeriesInfo],
                       values: dict[int, float | None]) -> list[Outcome]:
    """One outcome per series with a value; a series without data in the window has none."""
    outcomes = []
    for info in series:
        value = values.get(info.id)
        if value is None:
            continue
        severity, threshold = severity_for(value, rule.comparator, rule.critical, rule.warning)
        outcomes.append(Outcome(labels=info.labels, value=value, severity=severity, threshold=threshold,
                                host_id=info.host_id, series_id=info.id))
    return outcomes


@dataclass
class RunSummary:
    """What one run did: rules evaluated, rules errored (id -> message), outcomes handed over."""

    evaluated: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    outcomes: int = 0

    def __str__(self) -> str:
        return f"{len(self.evaluated)} rules evaluated, {self.outcomes} outcomes, {len(self.errors)} errored"


def run_rules(rule_ids: Iterable[int], *, at: dt.datetime | None = None) -> RunSummary:
    """Load the enabled rules, evaluate them at ``at`` (now), hand their outcomes to the lifecycle (one
    ``record_chunk`` call), then set ``last_evaluated_at`` / ``next_evaluation_at`` (= at + interval) of
    those that worked and record the error of those that raised."""
    at = at or timezone.now()
    rules = load_rules(rule_ids)
    summary = RunSummary()
    try:
        results = evaluate_rules(rules, at)
    except Exception:  # a bug in the batching itself: evaluate one by one instead
        logger.exception("batched evaluation failed; evaluating %d rules one by one", len(rules))
        results = {}
        for rule in rules:
            try:
                results[rule.pk] = evaluate_rule(rule, at)
            except Exception as exc:
                results[rule.pk] = exc
    items: list[lifecycle.RuleOutcomes] = []
    for rule in rules:
        result = results.setdefault(rule.pk, RuleError("not evaluated"))
        if not isinstance(result, Exception):
            items.append(lifecycle.RuleOutcomes(rule, result.outcomes, result.complete))
    if items:
        try:
            recorded = lifecycle.record_chunk(items, at=at)
            results.update({pk: exc for pk, exc in recorded.items() if isinstance(exc, Exception)})
        except Exception as exc:  # a bug in the chunk itself: every rule of it is errored, none lost
            logger.exception("recording a chunk of %d rules failed", len(items))
            results.update({item.rule.pk: exc for item in items})
    failed: list[tuple[AlertRule, Exception]] = []
    for rule in rules:
        result = results[rule.pk]
        if isinstance(result, Exception):
            failed.append((rule, result))
            continue
        summary.evaluated.append(rule.pk)
        summary.outcomes += len(result.outcomes)
    mark_evaluated(summary.evaluated, at)
    for rule, exc in failed:
        summary.errors[rule.pk] = mark_failed(rule, exc, at)
    return summary


def load_rules(rule_ids: Iterable[int]) -> list[AlertRule]:
    """The enabled rules, each organization loaded once and shared (a chunk of a thousand rules of one
    organization would otherwise build a thousand Organization objects)."""
    rules = list(AlertRule.objects.evaluated().filter(pk__in=list(rule_ids), enabled=True))
    orgs = {org.pk: org for org in Organization.objects.filter(pk__in={r.organization_id for r in rules})}
    for rule in rules:
        rule.organization = orgs[rule.organization_id]
    return rules


def run_rule(rule_id: int, *, at: dt.datetime | None = None) -> RunSummary:
    """One rule (the ingest path's task): the same as ``run_rules([rule_id])``."""
    return run_rules([rule_id], at=at)


_TABLE = AlertRule._meta.db_table


def mark_evaluated(rule_ids: list[int], at: dt.datetime) -> None:
    """One statement for the whole batch; not an edit of the rule, so ``updated_at`` stays."""
    if not rule_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET last_evaluated_at = %s, consecutive_errors = 0, "  # noqa: S608
            "next_evaluation_at = %s + make_interval(secs => evaluation_interval_seconds) WHERE id = ANY(%s)",
            [at, at, rule_ids])


def mark_failed(rule: AlertRule, exc: Exception, at: dt.datetime) -> str:
    """Record the error and push the next evaluation to at + interval · 2^(errors so far), capped: the
    first retry is the next regular evaluation, a rule that keeps raising backs off."""
    message = f"{type(exc).__name__}: {exc}"[:2000]
    logger.warning("alert rule %s (%s) failed: %s", rule.pk, rule.name, message,
                   exc_info=not isinstance(exc, RuleError | ValueError))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET last_error = %s, last_error_at = %s, "  # noqa: S608
            "consecutive_errors = consecutive_errors + 1, next_evaluation_at = %s + make_interval(secs => "
            "greatest(evaluation_interval_seconds, "
            "least(evaluation_interval_seconds * power(2, least(consecutive_errors, 10)), %s))) WHERE id = %s",
            [message, at, at, MAX_ERROR_BACKOFF_SECONDS, rule.pk])
    return message
