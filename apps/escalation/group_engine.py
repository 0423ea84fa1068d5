"""Group escalation: one escalation per alert group instead of one per alert. A group route (first match
by position) points a group at a policy; the first alert of the group to fire starts the group's run and
every other alert firing while it is active only joins the page (a storm of 50 alerts pages once).

The run pages while any alert of the group is firing and not acknowledged: once every open alert is
acknowledged (one by one, or all at once through ``acknowledge_group``) it stands down -- and re-escalates
after the policy's acknowledgement timeout if they are still open -- and when the group has no open
alert left it ends. A new alert firing in a stood-down group starts the escalation again (someone has to
look at it). Exactly-once rests on the same compare-and-set as alert runs: a step task carries
``(group, escalation_id, step_index, repeat)`` and acts only if the locked run still says exactly that."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.alerts.choices import NOTIFIABLE_STATES, AlertState, NotificationKind, NotificationStatus
from apps.alerts.hooks import AlertTransition
from apps.alerts.models import Alert, AlertEvent, AlertGroup, Notification
from apps.alerts.suppression import suppression_for
from apps.audit.services import record_event
from apps.escalation.choices import LIVE_STATUSES, RunStatus
from apps.escalation.models import GroupEscalationRun, GroupRoute
from apps.escalation.paging import StepContext, perform_step
from apps.escalation.stepping import advance, publish

GROUP_STEP_TASK = "escalation.run_group_step"


def _enqueue(args: list[Any], eta: dt.datetime | None, queue: str | None) -> None:
    publish(GROUP_STEP_TASK, args, eta, queue)


def _schedule(run: GroupEscalationRun, queue: str | None) -> None:
    if run.active_escalation_id is None or run.next_step_at is None:
        return
    args = [run.group_id, str(run.active_escalation_id), run.step_index, run.repeat]
    transaction.on_commit(functools.partial(_enqueue, args, run.next_step_at, queue), robust=True)


def _timeline(alert: Alert | None, at: dt.datetime, message: str, **details: Any) -> None:
    if alert is None:
        return
    AlertEvent.objects.create(organization_id=alert.organization_id, alert=alert, time=at, from_state=alert.state,
                              to_state=alert.state, message=message[:1000], details={"escalation": details})


def _cancel_delayed_pages(group_id: int, at: dt.datetime, why: str) -> int:
    """The group's personal-rule pages still waiting in the outbox become suppressed ledger rows."""
    return Notification.objects.filter(group_id=group_id, kind=NotificationKind.ESCALATION, attempts=0,
                                       status=NotificationStatus.PENDING, next_attempt_at__gt=at).update(
        status=NotificationStatus.SUPPRESSED, suppressed_reason=why[:500])


def _locked(group_id: int) -> GroupEscalationRun | None:
    return GroupEscalationRun.objects.select_for_update().filter(group_id=group_id).first()


def _open_alerts(group_id: int) -> list[Alert]:
    """The group's firing and acknowledged alerts, oldest first."""
    return list(Alert.objects.filter(group_id=group_id, state__in=NOTIFIABLE_STATES)
                .select_related("organization", "group__rule", "group__organization")
                .order_by("started_at", "pk"))


# --- routing ---------------------------------------------------------------------------------------


def route_labels(group: AlertGroup, alert: Alert | None) -> dict[str, str]:
    """What routes match on: the alert's labels (which include the rule's labels and alertname) overlaid
    with the group's labels, which every alert of the group shares."""
    return {**{k: str(v) for k, v in (alert.labels if alert else {}).items()},
            **{k: str(v) for k, v in (group.group_labels or {}).items()}}


def enabled_routes(organization_id: int) -> list[GroupRoute]:
    """The organization's enabled routes in the order they are tried. Index: escalation_grouproute_org_idx."""
    return list(GroupRoute.objects.filter(organization_id=organization_id, enabled=True).select_related("policy")
                .order_by("position", "created_at", "pk"))


def route_for(routes: list[GroupRoute], *, rule_id: int, labels: Mapping[str, str]) -> GroupRoute | None:
    """The first route that matches; None when the rule's own policy applies."""
    return next((r for r in routes if r.matches(rule_id, labels)), None)


def consume(transition: AlertTransition) -> bool:
    """The group half of ``engine.consume``: True when a firing alert escalates with its group (the
    per-alert engine then stays out). Acknowledgements and resolutions settle the group's run and return
    False, so an alert escalating on its own is stood down or ended too."""
    assert transition.group_id is not None
    if transition.to_state == AlertState.FIRING:
        return start_group_escalation(organization_id=transition.organization_id, group_id=transition.group_id,
                                      alert_id=transition.alert_id) is not None
    if transition.to_state in (AlertState.ACKNOWLEDGED, AlertState.RESOLVED):
        settle_group(group_id=transition.group_id)
    return False


# --- transitions -----------------------------------------------------------------------------------


@transaction.atomic
def start_group_escalation(*, organization_id: int, group_id: int, alert_id: int,
                           queue: str | None = None) -> GroupEscalationRun | None:
    """Start the group's escalation if a route takes it and it is not already paging; None when no route
    matches (the alert then escalates through its rule's policy, if any). Costs two small reads per firing
    transition in an organization without group routes."""
    current = GroupEscalationRun.objects.filter(group_id=group_id).values_list("status", flat=True).first()
    route = None
    if current != RunStatus.ACTIVE:
        routes = enabled_routes(organization_id)
        if not routes:
            return None
        group = AlertGroup.objects.filter(pk=group_id).first()
        if group is None:
            return None
        route = route_for(routes, rule_id=group.rule_id,
                          labels=route_labels(group, Alert.objects.filter(pk=alert_id).first()))
        if route is None:
            return None
    GroupEscalationRun.objects.bulk_create(
        [GroupEscalationRun(organization_id=organization_id, group_id=group_id)], ignore_conflicts=True)
    run = _locked(group_id)
    assert run is not None
    if run.status == RunStatus.ACTIVE or route is None:
        return run  # already paging for this group: the alert joins the page (the storm case)
    firing = [a for a in _open_alerts(group_id) if a.state == AlertState.FIRING]
    if not firing:
        return run  # moved on already (acknowledged or resolved before this hook ran)
    now = timezone.now()
    lead = next((a for a in firing if a.pk == alert_id), firing[0])
    run.route, run.policy, run.lead_alert = route, route.policy, lead
    run.status, run.active_escalation_id = RunStatus.ACTIVE, uuid.uuid4()
    run.step_index = run.repeat = run.steps_done = 0
    run.started_at, run.next_step_at, run.last_enqueued_at = now, now, now
    run.save()
    _timeline(lead, now, f"group escalation started: policy {route.policy.name} (route {route.name}), "
                         f"{len(firing)} alert(s) firing", id=str(run.active_escalation_id),
              policy=str(route.policy.public_id), route=str(route.public_id))
    _schedule(run, queue)
    return run


@transaction.atomic
def settle_group(*, group_id: int, queue: str | None = None) -> GroupEscalationRun | None:
    """After an acknowledgement or resolution in the group: with no open alert left the run ends; with
    every open alert acknowledged it stands down (arming the acknowledgement timeout, if any -- also when
    the steps had already run out)."""
    run = _locked(group_id)
    if run is None:
        return run
    alerts = _open_alerts(group_id)
    now = timezone.now()
    if run.status == RunStatus.ENDED:
        # The steps ran out before anyone acknowledged: the acknowledgement timeout still applies (it is
        # about the acknowledgement, not the steps), as for an alert's own escalation.
        timeout = run.policy.ack_timeout_seconds if run.policy else 0
        if timeout and run.route_id is not None and alerts and all(
                a.state == AlertState.ACKNOWLEDGED for a in alerts):
            _stand_down(run, alerts, now, queue)
        return run
    if not alerts:
        _end(run, now, "group resolved")
    elif run.status == RunStatus.ACTIVE and all(a.state == AlertState.ACKNOWLEDGED for a in alerts):
        _stand_down(run, alerts, now, queue)
    return run


def _stand_down(run: GroupEscalationRun, alerts: list[Alert], now: dt.datetime, queue: str | None) -> None:
    timeout = run.policy.ack_timeout_seconds if run.policy else 0
    run.status, run.active_escalation_id = RunStatus.ACKNOWLEDGED, uuid.uuid4()
    run.step_index = run.repeat = 0
    run.next_step_at = now + dt.timedelta(seconds=timeout) if timeout else None
    run.last_enqueued_at = run.next_step_at
    run.save()
    cancelled = _cancel_delayed_pages(run.group_id, now, "acknowledged before it was sent")
    who = sorted({a.acknowledged_by.get_username() for a in alerts if a.acknowledged_by_id and a.acknowledged_by})
    message = f"group escalation stopped: every open alert acknowledged ({', '.join(who) or 'someone'})"
    if timeout:
        message += f"; escalates again in {timeout}s unless resolved"
    _timeline(run.lead_alert, now, message, id=str(run.active_escalation_id), cancelled_pages=cancelled)
    _schedule(run, queue)


def _end(run: GroupEscalationRun, now: dt.datetime, reason: str) -> None:
    run.status, run.active_escalation_id, run.next_step_at = RunStatus.ENDED, None, None
    run.save()
    cancelled = _cancel_delayed_pages(run.group_id, now, reason)
    _timeline(run.lead_alert, now, f"group escalation ended: {reason}", cancelled_pages=cancelled)


# --- steps -----------------------------------------------------------------------------------------


@transaction.atomic
def run_group_step(*, group_id: int, escalation_id: str, step_index: int, repeat: int,
                   queue: str | None = None) -> str:
    """Perform one step of a group's escalation if the run (locked) still expects exactly it."""
    run = _locked(group_id)
    if run is None or run.status not in LIVE_STATUSES or str(run.active_escalation_id) != escalation_id \
            or run.step_index != step_index or run.repeat != repeat:
        return f"group {group_id}: stale step {step_index}/{repeat} of {escalation_id}, nothing to do"
    now = timezone.now()
    if run.next_step_at is not None and run.next_step_at > now + dt.timedelta(seconds=1):
        return f"group {group_id}: step {step_index} is due at {run.next_step_at.isoformat()}, not yet"
    alerts = _open_alerts(group_id)
    firing = [a for a in alerts if a.state == AlertState.FIRING]
    if not alerts:
        _end(run, now, "group resolved")
        return f"group {group_id}: resolved, escalation ended"
    if run.status == RunStatus.ACKNOWLEDGED:
        if firing:
            return f"group {group_id}: acknowledgement timer found firing alerts; left to their hooks"
        run.status, targets = RunStatus.ACTIVE, alerts
        _timeline(run.lead_alert, now, "acknowledgement timed out: escalating the group again", id=escalation_id)
    elif not firing:
        _stand_down(run, alerts, now, queue)  # acknowledged, and the hooks have not reached us yet
        return f"group {group_id}: every open alert acknowledged, escalation stood down"
    else:
        targets = firing
    steps = list(run.policy.steps.select_related("schedule").order_by("position")) if run.policy else []
    if not steps:
        _end(run, now, "the policy has no steps")
        return f"group {group_id}: no steps"
    return _perform(run, targets, steps, now, queue)


def _perform(run: GroupEscalationRun, targets: list[Alert], steps: list[Any], now: dt.datetime,
             queue: str | None) -> str:
    step = steps[run.step_index]
    # Silenced / inhibited / in-maintenance alerts are left out of the page; if all are, the page is a
    # suppressed ledger row, as for an alert's own escalation.
    reasons = {a.pk: (found.reason if (found := suppression_for(a, at=now)) else "") for a in targets}
    loud = [a for a in targets if not reasons[a.pk]]
    about = loud or targets
    suppressed = "" if loud else reasons[targets[0].pk]
    lead = next((a for a in about if a.pk == run.lead_alert_id), about[0])
    run.lead_alert = lead
    ctx = StepContext(escalation_id=run.active_escalation_id, step_index=run.step_index, repeat=run.repeat,
                      steps=len(steps), at=now, suppressed_reason=suppressed, alerts=tuple(about),
                      group_id=run.group_id)
    result = perform_step(step, lead, ctx)
    result_text = result.describe()
    if suppressed:
        result_text = f"suppressed ({suppressed}), not paged: {result_text}"
    label = f"group escalation step {run.step_index + 1}/{len(steps)}" + (
        f" (repeat {run.repeat})" if run.repeat else "")
    _timeline(lead, now, f"{label} {step.action} for {len(about)} alert(s): {result_text}",
              id=str(run.active_escalation_id), step=run.step_index, repeat=run.repeat,
              notifications=result.notification_ids, alerts=[str(a.public_id) for a in about])
    assert lead.group is not None
    record_event(action="escalation.group_step", actor=None, organization=run.organization_id, target=lead.group,
                 changes={"step": [None, run.step_index], "repeat": [None, run.repeat],
                          "alerts": [None, len(about)], "result": [None, result_text[:500]]})
    if not advance(run, len(steps), step.wait_seconds, now):
        _end(run, now, "every step done, nobody acknowledged")
        return f"group {run.group_id}: last step done"
    _schedule(run, queue)
    return f"group {run.group_id}: step done ({result_text}); next step {run.step_index} at {run.next_step_at}"


# --- sweep -----------------------------------------------------------------------------------------


def resend_overdue(*, now: dt.datetime | None = None, limit: int = 500, queue: str | None = None) -> int:
    """The group half of the sweep: re-send each live group run's overdue step once (compare-and-set on
    ``last_enqueued_at``). Index: escalation_grouprun_due_idx."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS)
    due = list(GroupEscalationRun.objects.filter(status__in=LIVE_STATUSES, next_step_at__lte=cutoff,
                                                 active_escalation_id__isnull=False)
               .exclude(last_enqueued_at__gt=cutoff).order_by("next_step_at")
               .values_list("pk", "group_id", "active_escalation_id", "step_index", "repeat", "last_enqueued_at")[
               :limit])
    sent = 0
    for pk, group_id, escalation_id, step_index, repeat, last in due:
        if GroupEscalationRun.objects.filter(pk=pk, last_enqueued_at=last,
                                             active_escalation_id=escalation_id).update(last_enqueued_at=now) != 1:
            continue
        _enqueue([group_id, str(escalation_id), step_index, repeat], None, queue)
        sent += 1
    return sent
