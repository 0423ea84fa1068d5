"""Alert transitions: what an evaluation's outcomes do to a rule's alerts, and acknowledge / resolve.

One Alert per rule x label set: none/resolved -> pending -> firing -> acknowledged -> resolved, and firing
again on recurrence (same row, new ``started_at``, acknowledgement cleared). Every state change is a
compare-and-set on the old state (``filter(pk=…, state=old).update(…) == 1``): a worker whose view is stale
changes nothing. Evaluations of one rule also hold a row lock on the rule for their transaction, which
orders two workers evaluating it at once (alert rows, then group rows, always in the same order, so they
queue instead of deadlocking); the compare-and-set keeps every transition single even without it.

Each transition writes an AlertEvent in its transaction; audit rows for people and tokens; and, after
commit, a live ``alerts.update``, a logs event and the ``FIBERSTACK_ALERT_CONSUMERS`` hook. Group
notifications are decided in the same transaction (``grouping.sync_group``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.alerts import hooks, live
from apps.alerts.choices import OPEN_STATES, AlertState, Comparator, EventActor, RuleKind
from apps.alerts.models import Alert, AlertEvent, AlertGroup, AlertRule
from apps.alerts.outcomes import Outcome
from apps.alerts.services import grouping
from apps.alerts.services.messages import render_template
from apps.audit.services import record_event
from apps.hosts.models import Host
from apps.logs.events import EventKind
from apps.logs.services import record_host_event

logger = logging.getLogger(__name__)

PENDING, FIRING, ACKNOWLEDGED, RESOLVED = (AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED,
                                          AlertState.RESOLVED)
HOST_DOWN = "host-down"
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    Comparator.GT: operator.gt, Comparator.GE: operator.ge, Comparator.LT: operator.lt,
    Comparator.LE: operator.le, Comparator.EQ: operator.eq, Comparator.NE: operator.ne,
}


class AlertStateError(Exception):
    """A person asked for a transition the alert's current state does not allow (the API answers 409)."""

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message)
        self.state = state


def fingerprint(labels: Mapping[str, str]) -> str:
    """sha256 hex of the sorted labels (series labels + rule labels + alertname; never severity)."""
    return hashlib.sha256(json.dumps(dict(labels), sort_keys=True).encode()).hexdigest()


def identity_labels(rule: AlertRule, series_labels: Mapping[str, str]) -> dict[str, str]:
    """The labels an alert is identified by. An external rule (an integration) keeps the source's own
    ``alertname``: one integration carries many alert names, and Alertmanager's identity includes it."""
    labels = {**{str(k): str(v) for k, v in series_labels.items()},
              **{str(k): str(v) for k, v in (rule.labels or {}).items()}}
    if rule.kind == RuleKind.EXTERNAL and labels.get("alertname"):
        return labels
    return {**labels, "alertname": rule.name}


@dataclass(slots=True)
class _Run:
    """What one call changed, for the after-commit side effects."""

    rule: AlertRule
    at: dt.datetime
    events: list[AlertEvent] = field(default_factory=list)
    transitions: list[tuple[Alert, str, str]] = field(default_factory=list)  # (alert, from, to)
    groups: set[int] = field(default_factory=set)
    forced: dict[int, set[str]] = field(default_factory=dict)  # group id -> fingerprints
    changed: dict[int, Alert] = field(default_factory=dict)


def _event(run: _Run, alert: Alert, old: str, new: str, message: str, *, actor: Any = None) -> None:
    actor_type, actor_repr = _actor(actor)
    details: dict[str, Any] = {"severity": alert.severity}
    if alert.baseline is not None:
        details["baseline"] = alert.baseline
    run.events.append(AlertEvent(organization_id=alert.organization_id, alert=alert, time=run.at, from_state=old,
                                 to_state=new, actor_type=actor_type, actor_repr=actor_repr, value=alert.value,
                                 threshold=alert.threshold, message=message[:1000], details=details))
    run.changed[alert.pk] = alert
    if old != new:
        run.transitions.append((alert, old, new))


def _actor(actor: Any) -> tuple[str, str]:
    if actor is None:
        return EventActor.SYSTEM, "system"
    describe = getattr(actor, "audit_actor", None)
    if describe is not None:
        return EventActor.TOKEN, describe()[:200]
    return EventActor.USER, actor.get_username()[:200]


def _cas(alert: Alert, old: str, fields: dict[str, Any], **guard: Any) -> bool:
    """Write ``fields`` only if the alert is still in ``old`` (and matches ``guard``); mirror them locally."""
    fields = {**fields, "updated_at": timezone.now()}
    if Alert.objects.filter(pk=alert.pk, state=old, **guard).update(**fields) != 1:
        return False
    for name, value in fields.items():
        setattr(alert, name, value)
    return True


def _past_resolve_threshold(rule: AlertRule, value: float | None) -> bool:
    """Hysteresis: the value is back on the normal side of ``resolve_threshold`` (no threshold, or no value
    because the series vanished: yes)."""
    if rule.resolve_threshold is None or value is None:
        return True
    compare = _COMPARE.get(rule.comparator)
    return compare is None or not compare(value, rule.resolve_threshold)


def _seconds(since: dt.datetime | None, at: dt.datetime) -> float:
    return (at - since).total_seconds() if since else 0.0


class _Evaluation:
    """Applies one rule's outcomes; a class only to share the run state among the steps."""

    def __init__(self, rule: AlertRule, at: dt.datetime) -> None:
        self.rule, self.at = rule, at
        self.run = _Run(rule=rule, at=at)
        self.group_cache: dict[str, AlertGroup] = {}

    def values(self, alert: Alert, outcome: Outcome | None, hosts: Mapping[int, str]) -> dict[str, Any]:
        """Value, threshold, baseline and texts, refreshed on every evaluation."""
        if outcome is None:
            return {"last_evaluated_at": self.at}
        host = hosts.get(outcome.host_id or 0) or next(
            (outcome.labels[k] for k in ("host", "hostname", "instance") if outcome.labels.get(k)), "")
        context = {"value": outcome.value, "threshold": outcome.threshold, "host": host, "labels": alert.labels}
        summary = (outcome.summary or render_template(self.rule.summary_template, **context)
                   or self._default_summary(outcome, host))
        description = (outcome.description if outcome.description is not None
                       else render_template(self.rule.description_template, **context) or self.rule.description)
        fields: dict[str, Any] = {"value": outcome.value, "threshold": outcome.threshold, "baseline": outcome.baseline,
                                  "summary": summary[:1000], "description": description,
                                  "last_evaluated_at": self.at}
        if outcome.host_id is not None:
            fields["host_id"] = outcome.host_id
        if outcome.series_id is not None:
            fields["series_id"] = outcome.series_id
        return fields

    def _default_summary(self, outcome: Outcome, host: str) -> str:
        where = f" on {host}" if host else ""
        if outcome.value is None:
            return f"{self.rule.name}{where}"
        limit = f" {self.rule.comparator} {outcome.threshold:g}" if outcome.threshold is not None else ""
        return f"{self.rule.name}{where}: {outcome.value:g}{limit}"

    def group(self, alert: Alert) -> AlertGroup:
        values = grouping.group_labels_for(self.rule, alert.labels)
        key = grouping.group_key(values)
        if key not in self.group_cache:
            self.group_cache[key] = grouping.group_for(self.rule, alert.labels)
        return self.group_cache[key]

    def step(self, alert: Alert, outcome: Outcome | None, fresh: dict[str, Any]) -> None:
        old = alert.state
        if outcome is not None and outcome.severity is not None:
            self.breach(alert, outcome, fresh)
        elif old in OPEN_STATES:
            self.clear(alert, outcome, fresh)

    def breach(self, alert: Alert, outcome: Outcome, fresh: dict[str, Any]) -> None:
        rule, at, old = self.rule, self.at, alert.state
        severity = str(outcome.severity)
        labels = {**{k: v for k, v in alert.labels.items() if k != "severity"}, "severity": severity}
        if old == RESOLVED:
            first = alert.started_at is None and alert.pending_since is None
            group = self.group(alert)
            new = PENDING if rule.for_seconds > 0 else FIRING
            fields = {**fresh, "state": new, "severity": severity, "labels": labels, "group_id": group.pk,
                      "pending_since": at, "started_at": at if new == FIRING else None, "clear_since": None,
                      "resolved_at": None, "acknowledged_at": None, "acknowledged_by": None,
                      "suppressed_reason": "", "inhibited_by": ""}
            if _cas(alert, old, fields):
                verb = "breached" if first else "recurred"
                _event(self.run, alert, "" if first else old, new,
                       f"{verb}: {severity}, value {outcome.value}" + (" (pending)" if new == PENDING else ""))
                self.run.groups.add(group.pk)
            return
        if old == PENDING:
            if _seconds(alert.pending_since, at) >= rule.for_seconds:
                fields = {**fresh, "state": FIRING, "severity": severity, "labels": labels, "started_at": at,
                          "clear_since": None}
                if _cas(alert, old, fields):
                    _event(self.run, alert, old, FIRING, f"firing: {severity} for {rule.for_seconds}s")
                    if alert.group_id:
                        self.run.groups.add(alert.group_id)
            else:
                _cas(alert, old, {**fresh, "severity": severity, "labels": labels})
            return
        # firing or acknowledged: still breaching (hysteresis restarts); a severity change is news.
        fields = {**fresh, "clear_since": None}
        if severity != alert.severity:
            before = alert.severity
            if _cas(alert, old, {**fields, "severity": severity, "labels": labels}, severity=before):
                _event(self.run, alert, old, old, f"severity {before} -> {severity}")
                if alert.group_id:
                    self.run.groups.add(alert.group_id)
                    self.run.forced.setdefault(alert.group_id, set()).add(alert.fingerprint)
            return
        _cas(alert, old, fields)

    def clear(self, alert: Alert, outcome: Outcome | None, fresh: dict[str, Any]) -> None:
        rule, at, old = self.rule, self.at, alert.state
        if old == PENDING:
            if _cas(alert, old, {**fresh, "state": RESOLVED, "resolved_at": at, "clear_since": None}):
                _event(self.run, alert, old, RESOLVED, "cleared before firing")
                if alert.group_id:
                    self.run.groups.add(alert.group_id)
            return
        value = outcome.value if outcome is not None else None
        if not _past_resolve_threshold(rule, value):
            _cas(alert, old, {**fresh, "clear_since": None})
            return
        clear_since = alert.clear_since or at
        if _seconds(clear_since, at) >= rule.keep_firing_for_seconds:
            why = "series gone" if outcome is None else f"value {value}"
            if _cas(alert, old, {**fresh, "state": RESOLVED, "resolved_at": at, "clear_since": None}):
                _event(self.run, alert, old, RESOLVED, f"resolved: {why}")
                if alert.group_id:
                    self.run.groups.add(alert.group_id)
            return
        _cas(alert, old, {**fresh, "clear_since": clear_since})


def record_outcomes(*, rule: AlertRule, outcomes: Sequence[Outcome], at: dt.datetime, complete: bool) -> list[Alert]:
    """Apply one evaluation of ``rule``: create/advance/resolve its alerts. ``complete``: the outcomes cover
    every label set the rule sees now, so open alerts missing from them are treated as clear (value None);
    otherwise only the listed label sets change. Returns the alerts the evaluation touched (open ones and
    those it resolved), as updated."""
    by_fp: dict[str, tuple[Outcome, dict[str, str]]] = {}
    for outcome in outcomes:
        labels = identity_labels(rule, outcome.labels)
        by_fp[fingerprint(labels)] = (outcome, labels)
    breaching = sorted(fp for fp, (o, _) in by_fp.items() if o.severity is not None)
    relevant = Q(state__in=OPEN_STATES) if complete else Q(state__in=OPEN_STATES, fingerprint__in=list(by_fp))
    # The common case (nothing breaches, nothing open) costs one indexed query and no transaction.
    if not breaching and not Alert.objects.filter(relevant, rule=rule).exists():
        return []
    with transaction.atomic():
        _lock_rule(rule.pk)
        if breaching:
            _create_missing(rule, {fp: by_fp[fp][1] for fp in breaching})
        alerts = list(Alert.objects.filter(rule=rule).filter(relevant | Q(fingerprint__in=breaching))
                      .select_related("organization").order_by("fingerprint"))
        hosts = _host_names(o.host_id for o, _ in by_fp.values())
        evaluation = _Evaluation(rule, at)
        touched = []
        for alert in alerts:
            outcome = by_fp.get(alert.fingerprint, (None, None))[0]
            if outcome is None and not complete:
                continue
            if alert.state == RESOLVED and (outcome is None or outcome.severity is None):
                continue
            evaluation.step(alert, outcome, evaluation.values(alert, outcome, hosts))
            touched.append(alert)
        _finish(evaluation.run)
    return touched


def _create_missing(rule: AlertRule, wanted: Mapping[str, dict[str, str]]) -> None:
    """Rows for label sets seen breaching for the first time, created race-safely on the unique
    (rule, fingerprint): a row another worker inserted first is simply used. New rows start as a
    never-fired "resolved" placeholder that the breach then moves by compare-and-set like any other."""
    existing = set(Alert.objects.filter(rule=rule, fingerprint__in=list(wanted)).values_list("fingerprint", flat=True))
    Alert.objects.bulk_create([
        Alert(organization_id=rule.organization_id, rule=rule, fingerprint=fp, labels=labels, state=RESOLVED)
        for fp, labels in wanted.items() if fp not in existing
    ], ignore_conflicts=True)


def _host_names(ids: Any) -> dict[int, str]:
    wanted = {i for i in ids if i}
    return dict(Host.objects.filter(pk__in=wanted).values_list("pk", "name")) if wanted else {}


def _finish(run: _Run, *, actor: Any = None) -> None:
    """Timeline rows and group notifications in the transaction; live, logs and hooks after commit."""
    AlertEvent.objects.bulk_create(run.events)
    for group_id in sorted(run.groups):
        grouping.sync_group(group_id, at=run.at, forced=run.forced.get(group_id, ()))
    if not run.changed:
        return
    organization_id = run.rule.organization_id
    changed = [live.alert_payload(a) for a in run.changed.values()]
    transaction.on_commit(lambda: live.broadcast_alerts_update(organization_id, changed), robust=True)
    actor_repr = _actor(actor)[1]
    logs = [_log_event(run.rule, alert, old, new) for alert, old, new in run.transitions]
    rows = [row for row in logs if row is not None]
    if rows:
        transaction.on_commit(lambda: _record_log_events(organization_id, rows, run.at), robust=True)
    for alert, old, new in run.transitions:
        hooks.dispatch_on_commit(hooks.AlertTransition(
            organization_id=organization_id, alert_id=alert.pk, group_id=alert.group_id, rule_id=run.rule.pk,
            from_state=old, to_state=new, at=run.at, actor_repr=actor_repr))


def _log_event(rule: AlertRule, alert: Alert, old: str, new: str) -> list[dict[str, Any]] | None:
    """The logs events of a transition: alert_firing / _acknowledged / _resolved, plus node_down / node_up
    for the host-down rule. A pending alert that cleared never fired: nothing."""
    host = alert.labels.get("host") or alert.labels.get("hostname") or ""
    if alert.host_id and not host:
        host = Host.objects.filter(pk=alert.host_id).values_list("name", flat=True).first() or ""
    name = alert.labels.get("alertname", rule.name)
    context = {"alert": str(alert.public_id), "rule": str(rule.public_id), "severity": alert.severity,
               "value": alert.value, "threshold": alert.threshold, "from": old, "to": new}
    events: list[dict[str, Any]] = []
    if new == FIRING and old != ACKNOWLEDGED:
        events.append({"kind": EventKind.ALERT_FIRING, "title": f"{name} firing", "level": "error"})
        if rule.system_key == HOST_DOWN:
            events.append({"kind": EventKind.NODE_DOWN, "title": f"{host or name} down", "level": "error"})
    elif new == ACKNOWLEDGED:
        events.append({"kind": EventKind.ALERT_ACKNOWLEDGED, "title": f"{name} acknowledged", "level": "info"})
    elif new == RESOLVED and old in (FIRING, ACKNOWLEDGED):
        events.append({"kind": EventKind.ALERT_RESOLVED, "title": f"{name} resolved", "level": "info"})
        if rule.system_key == HOST_DOWN:
            events.append({"kind": EventKind.NODE_UP, "title": f"{host or name} up", "level": "info"})
    for event in events:
        event.update(host=host, message=alert.summary, context=context)
    return events or None


def _record_log_events(organization_id: int, rows: list[list[dict[str, Any]]], at: dt.datetime) -> None:
    for events in rows:
        for event in events:
            try:
                record_host_event(organization_id=organization_id, source="alerts", when=at, **event)
            except Exception:  # best effort, like the live update: the alert itself is committed
                logger.warning("could not record %s event for organization %s", event["kind"], organization_id,
                               exc_info=True)


def _for_person(alert: Alert, actor: Any, action: str, old: str, new: str) -> None:
    record_event(action=action, actor=actor, organization=alert.organization_id, target=alert,
                 changes={"state": [old, new]})


@transaction.atomic
def acknowledge_alert(*, alert: Alert, actor: Any) -> Alert:
    """A person (or token) takes a firing alert: reminders stop and escalation stands down (hook). Only a
    firing alert can be acknowledged; anything else raises AlertStateError (two people acknowledging at
    once: the second is told it already is)."""
    at = timezone.now()
    user = None if actor is None or hasattr(actor, "audit_actor") else actor
    fields = {"state": ACKNOWLEDGED, "acknowledged_at": at, "acknowledged_by": user}
    if not _cas(alert, FIRING, fields):
        state = Alert.objects.filter(pk=alert.pk).values_list("state", flat=True).first() or RESOLVED
        alert.state = state
        raise AlertStateError(f"The alert is {state}; only a firing alert can be acknowledged.", state=state)
    run = _Run(rule=alert.rule, at=at)
    _event(run, alert, FIRING, ACKNOWLEDGED, "acknowledged", actor=actor)
    _for_person(alert, actor, "alert.acknowledged", FIRING, ACKNOWLEDGED)
    _finish(run, actor=actor)
    return alert


@transaction.atomic
def resolve_alert(*, alert: Alert, actor: Any) -> Alert:
    """A person (or token) closes an open alert by hand; channels told it fired are told it resolved. If
    the rule still breaches, the next evaluation opens it again (a recurrence)."""
    at = timezone.now()
    _lock_rule(alert.rule_id)
    old = Alert.objects.filter(pk=alert.pk).values_list("state", flat=True).first() or RESOLVED
    if old not in OPEN_STATES or not _cas(alert, old, {"state": RESOLVED, "resolved_at": at, "clear_since": None}):
        alert.state = old
        raise AlertStateError(f"The alert is {old}; only an open alert can be resolved.", state=old)
    run = _Run(rule=alert.rule, at=at)
    _event(run, alert, old, RESOLVED, "resolved by hand", actor=actor)
    if alert.group_id:
        run.groups.add(alert.group_id)
    _for_person(alert, actor, "alert.resolved", old, RESOLVED)
    _finish(run, actor=actor)
    return alert


def _lock_rule(rule_id: int) -> None:
    list(AlertRule.objects.select_for_update(no_key=True).filter(pk=rule_id).values_list("pk"))


@dataclass(frozen=True, slots=True)
class ReminderSummary:
    reminded_groups: int
    notifications: int
    rechecked_groups: int


def send_reminders(*, now: dt.datetime) -> ReminderSummary:
    """Remind channels of alerts still firing, unacknowledged, ``repeat_interval`` after they were last told
    (one message per group), and re-check groups whose alerts were suppressed when they fired, so one whose
    silence or maintenance has ended is paged now. Each group in its own transaction."""
    due: dict[int, list[Alert]] = {}
    for alert in grouping.due_for_reminder(now):
        due.setdefault(alert.group_id, []).append(alert)  # type: ignore[arg-type]
    groups = dict(AlertGroup.objects.filter(pk__in=list(due)).values_list("pk", "rule_id"))
    notifications = reminded = 0
    for group_id, alerts in due.items():
        with transaction.atomic():
            _lock_rule(groups[group_id])
            sent = grouping.remind_group(group_id, alerts, at=now)
        notifications += len(sent)
        reminded += bool(sent)
    rechecked = grouping.groups_with_ended_suppression()
    for group_id, rule_id in AlertGroup.objects.filter(pk__in=rechecked).values_list("pk", "rule_id"):
        with transaction.atomic():
            _lock_rule(rule_id)
            notifications += len(grouping.sync_group(group_id, at=now, recheck=True).notifications)
    return ReminderSummary(reminded_groups=reminded, notifications=notifications, rechecked_groups=len(rechecked))
