"""Alert transitions: what an evaluation's outcomes do to a rule's alerts, and acknowledge / resolve.

One Alert per rule x label set: none/resolved -> pending -> firing -> acknowledged -> resolved, and firing
again on recurrence (same row, new ``started_at``, acknowledgement cleared). Every state change is a
compare-and-set on the old state (``UPDATE … WHERE id = … AND state = old``, run set-based per chunk by
``services.bulk``): a worker whose view is stale changes nothing.

The evaluator hands a whole chunk of rules to :func:`record_chunk`. Evaluations that change no state are
pure refreshes, written in one guarded statement without a transaction or lock. Rules with a transition
hold a row lock on the rule for their transaction (all of the chunk's, taken in id order in one
statement), which orders two workers evaluating a rule at once (rule rows, then alert rows, then group
rows, always in the same order, so they queue instead of deadlocking); the compare-and-set keeps every
transition single even without it.

Each transition writes an AlertEvent in its transaction; audit rows for people and tokens; and, after
commit, a live ``alerts.update``, a logs event and the ``FIBERSTACK_ALERT_CONSUMERS`` hook (one batch per
chunk). Group notifications are decided in the same transaction, each group once (``grouping.sync_groups``)."""

from __future__ import annotations

import datetime as dt
import functools
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
from apps.alerts.services import bulk, grouping
from apps.alerts.services.messages import render_template
from apps.audit.services import record_event
from apps.hosts.models import Host
from apps.logs.events import EventKind
from apps.logs.services import record_host_events

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


@dataclass(slots=True)
class _Step:
    """One planned compare-and-set of an evaluation; ``then`` records the transition if it wins."""

    alert: Alert
    change: bulk.Change
    then: Callable[[], None] | None = None


class _Evaluation:
    """Plans one rule's outcomes as compare-and-set steps (run set-based by ``_execute``); a class only to
    share the run state among the steps. ``groups``: the rule's groups by key, resolved beforehand (a step
    that needs a missing one is a transition anyway, planned again once the groups exist)."""

    def __init__(self, rule: AlertRule, at: dt.datetime, groups: Mapping[tuple[int, str], AlertGroup]) -> None:
        self.rule, self.at, self.groups = rule, at, groups
        self.run = _Run(rule=rule, at=at)
        self.plan: list[_Step] = []

    @property
    def transitions(self) -> bool:
        """Does any step, if it wins, change state (an event, a group sync)? Otherwise it is a pure refresh."""
        return any(step.then is not None for step in self.plan)

    def cas(self, alert: Alert, old: str, fields: dict[str, Any], then: Callable[[], None] | None = None,
            **guard: Any) -> None:
        self.plan.append(_Step(alert, bulk.Change(pk=alert.pk, old=old, fields=fields, guard=guard), then))

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

    def group(self, alert: Alert) -> AlertGroup | None:
        return self.groups.get(_group_ref(self.rule, alert))

    def step(self, alert: Alert, outcome: Outcome | None, fresh: dict[str, Any]) -> None:
        old = alert.state
        if outcome is not None and outcome.severity is not None:
            self.breach(alert, outcome, fresh)
        elif old in OPEN_STATES:
            self.clear(alert, outcome, fresh)

    def _grouped(self, alert: Alert) -> None:
        if alert.group_id:
            self.run.groups.add(alert.group_id)

    def breach(self, alert: Alert, outcome: Outcome, fresh: dict[str, Any]) -> None:
        rule, at, old, run = self.rule, self.at, alert.state, self.run
        severity = str(outcome.severity)
        labels = {**{k: v for k, v in alert.labels.items() if k != "severity"}, "severity": severity}
        if old == RESOLVED:
            first = alert.started_at is None and alert.pending_since is None
            group = self.group(alert)
            new = PENDING if rule.for_seconds > 0 else FIRING
            fields = {**fresh, "state": new, "severity": severity, "labels": labels,
                      "group_id": group.pk if group else None, "pending_since": at,
                      "started_at": at if new == FIRING else None, "clear_since": None, "resolved_at": None,
                      "acknowledged_at": None, "acknowledged_by": None, "suppressed_reason": "", "inhibited_by": ""}

            def opened() -> None:
                verb = "breached" if first else "recurred"
                _event(run, alert, "" if first else old, new,
                       f"{verb}: {severity}, value {outcome.value}" + (" (pending)" if new == PENDING else ""))
                self._grouped(alert)

            self.cas(alert, old, fields, opened)
            return
        if old == PENDING:
            if _seconds(alert.pending_since, at) >= rule.for_seconds:
                fields = {**fresh, "state": FIRING, "severity": severity, "labels": labels, "started_at": at,
                          "clear_since": None}

                def fired() -> None:
                    _event(run, alert, old, FIRING, f"firing: {severity} for {rule.for_seconds}s")
                    self._grouped(alert)

                self.cas(alert, old, fields, fired)
            else:
                self.cas(alert, old, {**fresh, "severity": severity, "labels": labels})
            return
        # firing or acknowledged: still breaching (hysteresis restarts); a severity change is news.
        fields = {**fresh, "clear_since": None}
        before = alert.severity
        if severity != before:
            def escalated() -> None:
                _event(run, alert, old, old, f"severity {before} -> {severity}")
                if alert.group_id:
                    run.groups.add(alert.group_id)
                    run.forced.setdefault(alert.group_id, set()).add(alert.fingerprint)

            self.cas(alert, old, {**fields, "severity": severity, "labels": labels}, escalated, severity=before)
            return
        # A pure refresh; guarded by the severity read too, so a change another worker made meanwhile is
        # never overwritten with this evaluation's stale view.
        self.cas(alert, old, fields, severity=before)

    def clear(self, alert: Alert, outcome: Outcome | None, fresh: dict[str, Any]) -> None:
        rule, at, old, run = self.rule, self.at, alert.state, self.run
        if old == PENDING:
            def cleared() -> None:
                _event(run, alert, old, RESOLVED, "cleared before firing")
                self._grouped(alert)

            self.cas(alert, old, {**fresh, "state": RESOLVED, "resolved_at": at, "clear_since": None}, cleared)
            return
        value = outcome.value if outcome is not None else None
        if not _past_resolve_threshold(rule, value):
            self.cas(alert, old, {**fresh, "clear_since": None}, severity=alert.severity)
            return
        clear_since = alert.clear_since or at
        if _seconds(clear_since, at) >= rule.keep_firing_for_seconds:
            why = "series gone" if outcome is None else f"value {value}"

            def resolved() -> None:
                _event(run, alert, old, RESOLVED, f"resolved: {why}")
                self._grouped(alert)

            self.cas(alert, old, {**fresh, "state": RESOLVED, "resolved_at": at, "clear_since": None}, resolved)
            return
        self.cas(alert, old, {**fresh, "clear_since": clear_since}, severity=alert.severity)


def _group_ref(rule: AlertRule, alert: Alert) -> tuple[int, str]:
    return rule.pk, grouping.group_key(grouping.group_labels_for(rule, alert.labels))


def _execute(steps: Sequence[_Step], *, skip_locked: bool = False) -> None:
    """Run the steps set-based (one statement per shape); mirror what was written onto the alerts and
    record the transitions that won, in plan order. A step whose guard failed changes nothing."""
    if not steps:
        return
    written = bulk.apply([step.change for step in steps], skip_locked=skip_locked)
    now = timezone.now()
    for step in steps:
        if step.alert.pk not in written:
            continue
        for name, value in step.change.fields.items():
            setattr(step.alert, name, value)
        step.alert.updated_at = now
        if step.then is not None:
            step.then()


@dataclass(frozen=True, slots=True)
class RuleOutcomes:
    """One rule's evaluation handed to :func:`record_chunk` (``complete`` as in :func:`record_outcomes`)."""

    rule: AlertRule
    outcomes: Sequence[Outcome]
    complete: bool = True


@dataclass(slots=True)
class _Prepared:
    rule: AlertRule
    complete: bool
    by_fp: dict[str, tuple[Outcome, dict[str, str]]]
    breaching: list[str]
    missing: list[str] = field(default_factory=list)  # breaching label sets without a row when read


def _prepare(item: RuleOutcomes) -> _Prepared:
    by_fp: dict[str, tuple[Outcome, dict[str, str]]] = {}
    for outcome in item.outcomes:
        labels = identity_labels(item.rule, outcome.labels)
        by_fp[fingerprint(labels)] = (outcome, labels)
    breaching = sorted(fp for fp, (o, _) in by_fp.items() if o.severity is not None)
    return _Prepared(rule=item.rule, complete=item.complete, by_fp=by_fp, breaching=breaching)


def record_outcomes(*, rule: AlertRule, outcomes: Sequence[Outcome], at: dt.datetime, complete: bool) -> list[Alert]:
    """Apply one evaluation of ``rule``: create/advance/resolve its alerts. ``complete``: the outcomes cover
    every label set the rule sees now, so open alerts missing from them are treated as clear (value None);
    otherwise only the listed label sets change. Returns the alerts the evaluation touched (open ones and
    those it resolved), as updated. The one-rule case of :func:`record_chunk`; raises what it raised."""
    result = record_chunk([RuleOutcomes(rule, outcomes, complete)], at=at)[rule.pk]
    if isinstance(result, Exception):
        raise result
    return result


def record_chunk(items: Sequence[RuleOutcomes], *, at: dt.datetime) -> dict[int, list[Alert] | Exception]:
    """Apply the evaluations of a chunk of rules at ``at``: rule id -> the alerts touched, or what failed.

    Steady state costs a few statements for the whole chunk: the open alerts of every rule in one query,
    host names in one, and the evaluations that change no state (still breaching at the same severity,
    pending not yet due, clear within keep-firing) as one guarded set-based UPDATE per shape -- no
    transaction, no rule lock; a row another worker moved meanwhile is skipped. Rules with a real
    transition go through :func:`_transitions`: one transaction for all of them (rule rows locked in id
    order, alerts read again under the lock), their writes set-based too, and each group synced once. If
    that transaction fails, its rules are retried one by one, so one rule's failure stays its own."""
    prepared = [_prepare(item) for item in items]
    results: dict[int, list[Alert] | Exception] = {}
    loaded = _load_alerts(prepared)
    hosts = _host_names(o.host_id for p in prepared for o, _ in p.by_fp.values())
    refreshes: list[_Step] = []
    moving: list[_Prepared] = []
    for item in prepared:
        rows = loaded.get(item.rule.pk, [])
        if not item.breaching and not rows:
            results[item.rule.pk] = []
            continue
        have = {a.fingerprint for a in rows}
        item.missing = [fp for fp in item.breaching if fp not in have]
        if item.missing:
            moving.append(item)  # a label set breaching for the first time: a row to create
            continue
        evaluation, touched = _plan(item, rows, hosts, at, {})
        if evaluation.transitions:
            moving.append(item)
            continue
        refreshes += evaluation.plan
        results[item.rule.pk] = touched
    _execute(refreshes, skip_locked=True)  # outside any rule lock: never wait for a locked transition
    if not moving:
        return results
    try:
        with transaction.atomic():
            results.update(_transitions(moving, hosts, at))
        return results
    except Exception as exc:
        if len(moving) == 1:
            results[moving[0].rule.pk] = exc
            return results
        logger.warning("recording %d rules together failed; recording them one by one", len(moving),
                       exc_info=True)
    for item in moving:
        try:
            with transaction.atomic():
                results.update(_transitions([item], hosts, at))
        except Exception as exc:
            results[item.rule.pk] = exc
    return results


def _load_alerts(prepared: Sequence[_Prepared]) -> dict[int, list[Alert]]:
    """The alerts each evaluation may change, for the whole chunk in one query: open ones (those listed by
    an incomplete evaluation) and any row of a breaching label set. Each row gets its (already loaded)
    rule and organization, so nothing later loads them again."""
    if not prepared:
        return {}
    rules = {p.rule.pk: p for p in prepared}
    breaching = [fp for p in prepared for fp in p.breaching]
    rows = (Alert.objects.filter(rule_id__in=list(rules))
            .filter(Q(state__in=OPEN_STATES) | Q(fingerprint__in=breaching)).order_by("rule_id", "fingerprint"))
    found: dict[int, list[Alert]] = {}
    for alert in rows:
        item = rules[alert.rule_id]
        wanted = alert.fingerprint in item.by_fp and item.by_fp[alert.fingerprint][0].severity is not None
        if not wanted and (alert.state not in OPEN_STATES or not (item.complete or alert.fingerprint in item.by_fp)):
            continue
        alert.rule, alert.organization = item.rule, item.rule.organization
        found.setdefault(alert.rule_id, []).append(alert)
    return found


def _plan(item: _Prepared, rows: Sequence[Alert], hosts: Mapping[int, str], at: dt.datetime,
          groups: Mapping[tuple[int, str], AlertGroup]) -> tuple[_Evaluation, list[Alert]]:
    evaluation = _Evaluation(item.rule, at, groups)
    touched = []
    for alert in rows:
        outcome = item.by_fp.get(alert.fingerprint, (None, None))[0]
        if outcome is None and not item.complete:
            continue
        if alert.state == RESOLVED and (outcome is None or outcome.severity is None):
            continue
        evaluation.step(alert, outcome, evaluation.values(alert, outcome, hosts))
        touched.append(alert)
    return evaluation, touched


def _transitions(moving: Sequence[_Prepared], hosts: Mapping[int, str],
                 at: dt.datetime) -> dict[int, list[Alert]]:
    """The rules with a transition, in the caller's transaction: rule rows locked (id order, so two workers
    queue instead of deadlocking), missing rows created, alerts read again under the lock, groups created
    for alerts that open, every step run set-based, then events, group syncs and after-commit effects."""
    _lock_rules([item.rule.pk for item in moving])
    _create_missing(moving)
    loaded = _load_alerts(moving)
    wanted = [(item.rule, alert.labels) for item in moving for alert in loaded.get(item.rule.pk, [])
              if alert.state == RESOLVED]
    groups = grouping.groups_for(wanted)
    results: dict[int, list[Alert]] = {}
    evaluations = []
    for item in moving:
        evaluation, touched = _plan(item, loaded.get(item.rule.pk, []), hosts, at, groups)
        evaluations.append(evaluation)
        results[item.rule.pk] = touched
    _execute([step for evaluation in evaluations for step in evaluation.plan])
    _finish_many([evaluation.run for evaluation in evaluations], hosts=hosts)
    return results


def _create_missing(moving: Sequence[_Prepared]) -> None:
    """Rows for label sets seen breaching for the first time (``missing`` when the chunk was read),
    created race-safely on the unique (rule, fingerprint): a row another worker inserted since is simply
    used. New rows start as a never-fired "resolved" placeholder that the breach then moves by
    compare-and-set like any other."""
    Alert.objects.bulk_create([
        Alert(organization_id=item.rule.organization_id, rule=item.rule, fingerprint=fp, labels=item.by_fp[fp][1],
              state=RESOLVED)
        for item in moving for fp in item.missing
    ], ignore_conflicts=True, batch_size=1000)


def _host_names(ids: Any) -> dict[int, str]:
    wanted = {i for i in ids if i}
    return dict(Host.objects.filter(pk__in=wanted).values_list("pk", "name")) if wanted else {}


def _finish(run: _Run, *, actor: Any = None) -> None:
    _finish_many([run], actor=actor)


def _finish_many(runs: Sequence[_Run], *, actor: Any = None, hosts: Mapping[int, str] | None = None) -> None:
    """Timeline rows and group notifications in the transaction (one bulk insert; each group synced once,
    whatever number of its alerts moved); live, logs and hooks after commit, one live update and one logs
    write per organization."""
    AlertEvent.objects.bulk_create([event for run in runs for event in run.events], batch_size=1000)
    by_time: dict[dt.datetime, dict[int, set[str]]] = {}
    for run in runs:
        changes = by_time.setdefault(run.at, {})
        for group_id in run.groups:
            changes.setdefault(group_id, set()).update(run.forced.get(group_id, ()))
    for at, changes in by_time.items():
        grouping.sync_groups(changes, at=at)
    actor_repr = _actor(actor)[1]
    changed: dict[int, list[dict[str, Any]]] = {}
    logs: dict[tuple[int, dt.datetime], list[dict[str, Any]]] = {}
    names = dict(hosts or {})
    transitions: list[hooks.AlertTransition] = []
    for run in runs:
        if not run.changed:
            continue
        organization_id = run.rule.organization_id
        changed.setdefault(organization_id, []).extend(live.alert_payload(a) for a in run.changed.values())
        for alert, old, new in run.transitions:
            logs.setdefault((organization_id, run.at), []).extend(_log_event(run.rule, alert, old, new, names) or ())
            transitions.append(hooks.AlertTransition(
                organization_id=organization_id, alert_id=alert.pk, group_id=alert.group_id, rule_id=run.rule.pk,
                from_state=old, to_state=new, at=run.at, actor_repr=actor_repr))
    hooks.dispatch_batch_on_commit(transitions)
    for organization_id, payload in changed.items():
        transaction.on_commit(functools.partial(live.broadcast_alerts_update, organization_id, payload), robust=True)
    for (organization_id, at), events in logs.items():
        if events:
            transaction.on_commit(functools.partial(_record_log_events, organization_id, events, at), robust=True)


def _log_event(rule: AlertRule, alert: Alert, old: str, new: str,
               hosts: dict[int, str]) -> list[dict[str, Any]] | None:
    """The logs events of a transition: alert_firing / _acknowledged / _resolved, plus node_down / node_up
    for the host-down rule. A pending alert that cleared never fired: nothing. ``hosts``: names known so
    far (filled in here when one is missing)."""
    host = alert.labels.get("host") or alert.labels.get("hostname") or ""
    if alert.host_id and not host:
        if alert.host_id not in hosts:
            hosts[alert.host_id] = Host.objects.filter(pk=alert.host_id).values_list("name", flat=True).first() or ""
        host = hosts[alert.host_id]
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


def _record_log_events(organization_id: int, events: list[dict[str, Any]], at: dt.datetime) -> None:
    """One logs write for the events of a chunk; best effort, like the live update (the alerts themselves
    are committed)."""
    try:
        record_host_events(organization_id=organization_id, events=events, source="alerts", when=at)
    except Exception:
        logger.warning("could not record %d alert events for organization %s", len(events), organization_id,
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
    _lock_rules([rule_id])


def _lock_rules(rule_ids: Sequence[int]) -> None:
    """Row locks on the rules, taken in id order in one statement (every locker takes them so)."""
    list(AlertRule.objects.select_for_update(no_key=True).filter(pk__in=list(rule_ids)).order_by("pk")
         .values_list("pk"))


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
