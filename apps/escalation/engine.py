"""The escalation engine: alert transitions start, stand down, re-arm and end an alert's escalation, and
each step runs as a Celery task at its time (OnCall's ``escalate_alert_group``).

Exactly-once rests on one compare-and-set: a step task carries ``(alert, escalation_id, step_index,
repeat)`` and acts only if the run row, locked, still says exactly that; acting advances it in the same
transaction that writes the pages to the outbox. So a duplicate (the sweep re-sending a step a slow worker
still holds), a stale task (from before an acknowledgement or a recurrence) or a redelivered message does
nothing. Every decision re-reads the alert's current state rather than trusting the transition it was
told about, because hooks of one alert may run out of order on different workers."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.alerts.choices import AlertState, NotificationKind, NotificationStatus
from apps.alerts.hooks import AlertTransition
from apps.alerts.models import Alert, AlertEvent, Notification
from apps.alerts.suppression import suppression_for
from apps.audit.services import record_event
from apps.escalation import group_engine
from apps.escalation.choices import LIVE_STATUSES, RunStatus
from apps.escalation.models import EscalationRun, GroupEscalationRun, GroupRoute, RulePolicy
from apps.escalation.paging import StepContext, perform_step
from apps.escalation.stepping import advance, publish

logger = logging.getLogger(__name__)

RUN_STEP_TASK = "escalation.run_step"
SWEEP_TASK = "escalation.sweep_escalations"


# --- scheduling ------------------------------------------------------------------------------------


def _enqueue(args: list[Any], eta: dt.datetime | None, queue: str | None) -> None:
    publish(RUN_STEP_TASK, args, eta, queue)


def _schedule(run: EscalationRun, queue: str | None) -> None:
    """Send the run's next step after commit (never if the transaction rolls back)."""
    if run.active_escalation_id is None or run.next_step_at is None:
        return
    args = [run.alert_id, str(run.active_escalation_id), run.step_index, run.repeat]
    transaction.on_commit(functools.partial(_enqueue, args, run.next_step_at, queue), robust=True)


def _timeline(alert: Alert, at: dt.datetime, message: str, **details: Any) -> None:
    AlertEvent.objects.create(organization_id=alert.organization_id, alert=alert, time=at, from_state=alert.state,
                              to_state=alert.state, message=message[:1000], details={"escalation": details})


def _cancel_delayed_pages(alert: Alert, at: dt.datetime, why: str) -> int:
    """Personal-rule pages still waiting in the outbox (``email now, webhook in 5 min``) are not sent once
    someone acknowledged: they become suppressed ledger rows (compare-and-set on pending, untried)."""
    return Notification.objects.filter(alert=alert, kind=NotificationKind.ESCALATION, attempts=0,
                                       status=NotificationStatus.PENDING, next_attempt_at__gt=at).update(
        status=NotificationStatus.SUPPRESSED, suppressed_reason=why[:500])


def _locked_run(alert_id: int) -> EscalationRun | None:
    return EscalationRun.objects.select_for_update().filter(alert_id=alert_id).first()


# --- transitions -----------------------------------------------------------------------------------


def consume(transition: AlertTransition) -> None:
    """FIBERSTACK_ALERT_CONSUMERS entry: called after commit with each alert transition. A firing alert
    whose group a group route takes (or whose group is already escalating) escalates with its group, once;
    any other escalates on its own. Acknowledgements and resolutions reach both kinds of run: each is a
    no-op where there is nothing of its kind to stand down or end."""
    if transition.group_id is not None and group_engine.consume(transition):
        return
    if transition.to_state == AlertState.FIRING:
        start_escalation(alert_id=transition.alert_id)
    elif transition.to_state == AlertState.ACKNOWLEDGED:
        stand_down(alert_id=transition.alert_id)
    elif transition.to_state == AlertState.RESOLVED:
        end_escalation(alert_id=transition.alert_id, reason="alert resolved")


def consume_batch(transitions: list[AlertTransition]) -> None:
    """``consume`` for many transitions (an alert storm's): which rules have a policy, which organizations
    have group routes and which alerts and groups have a run is read once for all of them, so transitions
    that cannot start or end anything cost nothing more; the rest go through ``consume`` one by one, in
    order (a failure is logged and skipped)."""
    firing = {t.rule_id for t in transitions if t.to_state == AlertState.FIRING}
    routed = set(RulePolicy.objects.filter(rule_id__in=firing).values_list("rule_id", flat=True))
    group_routed = set(GroupRoute.objects.filter(
        organization_id__in={t.organization_id for t in transitions if t.to_state == AlertState.FIRING},
        enabled=True).values_list("organization_id", flat=True))
    running = set(EscalationRun.objects.filter(alert_id__in={t.alert_id for t in transitions
                                                             if t.to_state != AlertState.FIRING})
                  .values_list("alert_id", flat=True))
    groups_running = set(GroupEscalationRun.objects.filter(
        group_id__in={t.group_id for t in transitions if t.group_id is not None}).values_list("group_id", flat=True))
    for transition in transitions:
        if transition.group_id in groups_running:
            wanted = True
        elif transition.to_state == AlertState.FIRING:
            wanted = transition.rule_id in routed or (
                transition.group_id is not None and transition.organization_id in group_routed)
        else:
            wanted = transition.alert_id in running
        if not wanted:
            continue
        try:
            consume(transition)
        except Exception:
            logger.exception("escalation failed for alert %s (%s)", transition.alert_id, transition.to_state)


consume.batch = consume_batch  # type: ignore[attr-defined]  # read by apps.core.hooks.dispatch_batch


@transaction.atomic
def start_escalation(*, alert_id: int, queue: str | None = None) -> EscalationRun | None:
    """Start (or, on recurrence, restart) the escalation of a firing alert whose rule has a policy: a new
    ``active_escalation_id`` retires every step task of a previous occurrence. Idempotent per occurrence."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        return None
    route = RulePolicy.objects.filter(rule_id=alert.rule_id).select_related("policy").first()
    if route is None:
        return None
    EscalationRun.objects.bulk_create([EscalationRun(organization_id=alert.organization_id, alert=alert)],
                                      ignore_conflicts=True)
    run = _locked_run(alert_id)
    assert run is not None
    alert.refresh_from_db(fields=["state", "started_at", "acknowledged_at"])
    if alert.state != AlertState.FIRING:
        return run  # moved on already; the consumer of that later transition decides
    if run.started_at is not None and run.started_at == alert.started_at:
        return run  # this occurrence already had its escalation (a repeated hook): never start it twice
    now = timezone.now()
    run.policy, run.status, run.active_escalation_id = route.policy, RunStatus.ACTIVE, uuid.uuid4()
    run.step_index = run.repeat = run.steps_done = 0
    run.started_at, run.next_step_at, run.last_enqueued_at = alert.started_at, now, now
    run.save()
    _timeline(alert, now, f"escalation started: policy {route.policy.name}", id=str(run.active_escalation_id),
              policy=str(route.policy.public_id))
    _schedule(run, queue)
    return run


@transaction.atomic
def stand_down(*, alert_id: int, actor: Any = None, queue: str | None = None) -> EscalationRun | None:
    """Acknowledged: pending steps become stale (new id); with an acknowledgement timeout, one task is
    armed for when it expires and re-escalates if the alert is still unresolved -- also when the steps had
    already run out for this occurrence (the timeout is about the acknowledgement, not the steps)."""
    run = _locked_run(alert_id)
    if run is None or run.status == RunStatus.ACKNOWLEDGED:
        return run
    alert = Alert.objects.get(pk=alert_id)
    if actor is None and alert.state != AlertState.ACKNOWLEDGED:
        return run  # stale hook: the alert moved on (resolved or firing again)
    timeout = run.policy.ack_timeout_seconds if run.policy else 0
    if run.status == RunStatus.ENDED and not (timeout and run.started_at == alert.started_at):
        return run  # nothing to stand down, and no timeout to arm for this occurrence
    now = timezone.now()
    run.status, run.active_escalation_id = RunStatus.ACKNOWLEDGED, uuid.uuid4()
    run.step_index = run.repeat = 0
    run.ack_seen_at = alert.acknowledged_at
    run.next_step_at = now + dt.timedelta(seconds=timeout) if timeout else None
    run.last_enqueued_at = run.next_step_at
    run.save()
    cancelled = _cancel_delayed_pages(alert, now, "acknowledged before it was sent")
    who = actor.get_username() if actor is not None else (alert.acknowledged_by.get_username()
                                                         if alert.acknowledged_by else "someone")
    message = f"escalation stopped: acknowledged by {who}"
    if timeout:
        message += f"; escalates again in {timeout}s unless resolved"
    _timeline(alert, now, message, id=str(run.active_escalation_id), cancelled_pages=cancelled)
    if actor is not None:
        record_event(action="escalation.acknowledged", actor=actor, organization=alert.organization_id,
                     target=alert, changes={"escalation": ["active", "acknowledged"]})
    _schedule(run, queue)
    return run


@transaction.atomic
def end_escalation(*, alert_id: int, reason: str) -> EscalationRun | None:
    """Resolved (or nothing left to do): the run ends and every queued step becomes stale."""
    run = _locked_run(alert_id)
    if run is None or run.status not in LIVE_STATUSES:
        return run
    alert = Alert.objects.get(pk=alert_id)
    if reason == "alert resolved" and alert.state != AlertState.RESOLVED:
        return run  # stale hook: the alert recurred since
    _end(run, alert, timezone.now(), reason)
    return run


def _end(run: EscalationRun, alert: Alert, now: dt.datetime, reason: str) -> None:
    run.status, run.active_escalation_id, run.next_step_at = RunStatus.ENDED, None, None
    run.save()
    cancelled = _cancel_delayed_pages(alert, now, reason)
    _timeline(alert, now, f"escalation ended: {reason}", cancelled_pages=cancelled)


# --- steps -----------------------------------------------------------------------------------------


@transaction.atomic
def run_step(*, alert_id: int, escalation_id: str, step_index: int, repeat: int,
             queue: str | None = None) -> str:
    """Perform one step if the run (locked) still expects exactly it, then schedule the next."""
    run = _locked_run(alert_id)
    if run is None or run.status not in LIVE_STATUSES or str(run.active_escalation_id) != escalation_id \
            or run.step_index != step_index or run.repeat != repeat:
        return f"alert {alert_id}: stale step {step_index}/{repeat} of {escalation_id}, nothing to do"
    now = timezone.now()
    if run.next_step_at is not None and run.next_step_at > now + dt.timedelta(seconds=1):
        return f"alert {alert_id}: step {step_index} is due at {run.next_step_at.isoformat()}, not yet"
    alert = Alert.objects.select_related("organization", "group__rule", "group__organization", "acknowledged_by") \
        .get(pk=alert_id)
    if alert.state not in (AlertState.FIRING, AlertState.ACKNOWLEDGED):
        _end(run, alert, now, f"alert {alert.state}")
        return f"alert {alert_id}: {alert.state}, escalation ended"
    if run.status == RunStatus.ACKNOWLEDGED:
        if alert.state != AlertState.ACKNOWLEDGED:
            return f"alert {alert_id}: acknowledgement timer found the alert {alert.state}; left to its hook"
        run.status, run.ack_seen_at = RunStatus.ACTIVE, alert.acknowledged_at
        _timeline(alert, now, "acknowledgement timed out: escalating again", id=escalation_id)
    elif alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_at != run.ack_seen_at:
        # Acknowledged, and its hook has not reached us yet: stand down here instead of paging.
        stand_down(alert_id=alert_id, queue=queue)
        return f"alert {alert_id}: acknowledged, escalation stood down"
    steps = list(run.policy.steps.select_related("schedule").order_by("position")) if run.policy else []
    if not steps:
        _end(run, alert, now, "the policy has no steps")
        return f"alert {alert_id}: no steps"
    return _perform(run, alert, steps, now, queue)


def _perform(run: EscalationRun, alert: Alert, steps: list[Any], now: dt.datetime, queue: str | None) -> str:
    step = steps[run.step_index]
    if alert.group is None:
        result_text = "not paged: the alert has no group to notify about"
        notification_ids: list[int] = []
        suppressed = ""
    else:
        suppression = suppression_for(alert, at=now)
        suppressed = suppression.reason if suppression else ""
        ctx = StepContext(escalation_id=run.active_escalation_id, step_index=run.step_index, repeat=run.repeat,
                          steps=len(steps), at=now, suppressed_reason=suppressed)
        result = perform_step(step, alert, ctx)
        result_text, notification_ids = result.describe(), result.notification_ids
    label = f"escalation step {run.step_index + 1}/{len(steps)}" + (f" (repeat {run.repeat})" if run.repeat else "")
    if suppressed:
        result_text = f"suppressed ({suppressed}), not paged: {result_text}"
    _timeline(alert, now, f"{label} {step.action}: {result_text}", id=str(run.active_escalation_id),
              step=run.step_index, repeat=run.repeat, notifications=notification_ids)
    record_event(action="escalation.step", actor=None, organization=alert.organization_id, target=alert,
                 changes={"step": [None, run.step_index], "repeat": [None, run.repeat],
                          "result": [None, result_text[:500]]})
    if not advance(run, len(steps), step.wait_seconds, now):
        _end(run, alert, now, "every step done, nobody acknowledged")
        return f"alert {alert.pk}: last step done"
    _schedule(run, queue)
    return f"alert {alert.pk}: step done ({result_text}); next step {run.step_index} at {run.next_step_at}"


@transaction.atomic
def reacknowledge(*, alert: Alert, actor: Any) -> EscalationRun | None:
    """An alert that is acknowledged but re-escalating (its acknowledgement timed out) is taken again
    from a link: the escalation stands down and the timeout starts over."""
    return stand_down(alert_id=alert.pk, actor=actor)


# --- sweep -----------------------------------------------------------------------------------------


def resend_overdue(*, now: dt.datetime | None = None, limit: int = 500, queue: str | None = None) -> int:
    """Re-send the step of each live run whose step is overdue by the grace period and was not re-sent
    within it (a lost message, a worker killed holding it, a restart). Claimed by compare-and-set on
    ``last_enqueued_at`` so two sweeps re-send once; the step's own compare-and-set makes any extra copy
    harmless. Index: escalation_run_due_idx."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS)
    due = list(EscalationRun.objects.filter(status__in=LIVE_STATUSES, next_step_at__lte=cutoff,
                                            active_escalation_id__isnull=False)
               .exclude(last_enqueued_at__gt=cutoff).order_by("next_step_at")
               .values_list("pk", "alert_id", "active_escalation_id", "step_index", "repeat", "last_enqueued_at")[
               :limit])
    sent = 0
    for pk, alert_id, escalation_id, step_index, repeat, last in due:
        if EscalationRun.objects.filter(pk=pk, last_enqueued_at=last, active_escalation_id=escalation_id).update(
                last_enqueued_at=now) != 1:
            continue
        _enqueue([alert_id, str(escalation_id), step_index, repeat], None, queue)
        sent += 1
    return sent
