"""What one escalation step does: who its targets are at the step's time (a schedule's on-call is asked
then, through the same `who_is_on_call` as the API), and the outbox rows that page them. Called by the
engine inside the transaction that advances the run, so a step's pages and its compare-and-set commit
together or not at all."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from apps.alerts.choices import NotificationKind
from apps.alerts.models import Alert, NotificationChannel
from apps.alerts.services.messages import FIRING, alert_entry, group_body
from apps.alerts.services.outbox import create_notifications, record_suppressed
from apps.escalation.choices import StepAction
from apps.escalation.links import make_url
from apps.escalation.models import ContactMethod, EscalationStep, OnCallAssignment
from apps.organizations.models import Membership


@dataclass(slots=True)
class StepResult:
    """What a step did, for the timeline and the audit row."""

    paged: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    on_call: list[str] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        if self.on_call or self.paged:
            parts.append("paged " + (", ".join(self.paged) or "nobody"))
        if self.channels:
            parts.append("notified " + ", ".join(self.channels))
        if self.unreachable:
            parts.append("no contact method: " + ", ".join(self.unreachable))
        if self.unverified:
            parts.append("skipped unverified contact methods: " + ", ".join(self.unverified))
        return "; ".join(parts) or "no target"


@dataclass(frozen=True, slots=True)
class StepContext:
    """Identity of the step being run (stored with every assignment)."""

    escalation_id: Any
    step_index: int
    repeat: int
    steps: int
    at: dt.datetime
    suppressed_reason: str = ""
    # A group escalation: the group's alerts the page is about (the alert passed is the lead among them).
    alerts: tuple[Any, ...] = ()
    group_id: int | None = None


def step_users(step: EscalationStep, alert: Alert, at: dt.datetime) -> tuple[list[Any], list[str]]:
    """The users a step pages at ``at`` and, for a schedule step, who the schedule had on call."""
    if step.action == StepAction.NOTIFY_SCHEDULE:
        if step.schedule is None:
            return [], []
        users = step.schedule.who_is_on_call(at)
        return users, [u.get_username() for u in users]
    if step.action == StepAction.NOTIFY_USER:
        members = set(Membership.objects.filter(organization_id=alert.organization_id, user__is_active=True)
                      .values_list("user_id", flat=True))
        return [u for u in step.users.order_by("username") if u.pk in members], []
    return [], []


def _body(alert: Alert, ctx: StepContext, user: Any | None) -> dict[str, Any]:
    """An Alertmanager v4 body about the alert (or, for a group escalation, every alert of the group the
    page is about), its annotations carrying the step and signed links -- for a group, links that
    acknowledge or resolve the whole group."""
    assert alert.group is not None
    alerts = list(ctx.alerts) or [alert]
    body = group_body(group=alert.group, firing=alerts, resolved=[], at=ctx.at)
    extra = {"escalation": f"step {ctx.step_index + 1} of {ctx.steps}, pass {ctx.repeat + 1}"}
    if user is not None:
        suffix = "_group" if ctx.group_id is not None else ""
        extra["acknowledge_url"] = make_url(alert=alert, user=user, action=f"acknowledge{suffix}")
        extra["resolve_url"] = make_url(alert=alert, user=user, action=f"resolve{suffix}")
    entries = [alert_entry(a, FIRING, ctx.at) for a in alerts]
    for entry in entries:
        entry["annotations"] = {**entry["annotations"], **extra}
    body["alerts"] = entries
    body["commonAnnotations"] = ({**body.get("commonAnnotations", {}), **extra} if len(entries) > 1
                                 else dict(entries[0]["annotations"]))
    return body


def _queue(alert: Alert, ctx: StepContext, user: Any | None, channels: list[NotificationChannel],
           at: dt.datetime) -> list[int]:
    body = _body(alert, ctx, user)
    assert alert.group is not None
    if ctx.suppressed_reason:
        rows = record_suppressed(group=alert.group, body=body, kind=NotificationKind.ESCALATION, channels=channels,
                                 reason=ctx.suppressed_reason, alert=alert, at=at)
    else:
        rows = create_notifications(group=alert.group, body=body, kind=NotificationKind.ESCALATION,
                                    channels=channels, alert=alert, at=at)
    return [row.pk for row in rows]


def page_user(alert: Alert, ctx: StepContext, user: Any, skipped: list[str] | None = None) -> list[int]:
    """Queue the user's verified contact methods, each at its delay (the personal notification rule).
    Delayed rows wait in the outbox (``next_attempt_at``); the engine cancels them if the alert is
    acknowledged first. Unverified methods are never paged (an address nobody confirmed may be anyone's);
    they are named in ``skipped`` ("alice email") for the alert's timeline."""
    by_delay: dict[int, list[NotificationChannel]] = defaultdict(list)
    methods = (ContactMethod.objects.filter(organization_id=alert.organization_id, user=user, enabled=True,
                                            channel__isnull=False).select_related("channel").order_by("pk"))
    for method in methods:
        assert method.channel is not None
        if not method.verified:
            if skipped is not None:
                skipped.append(f"{user.get_username()} {method.kind}")
            continue
        by_delay[method.delay_seconds].append(method.channel)
    ids: list[int] = []
    for delay, channels in sorted(by_delay.items()):
        ids += _queue(alert, ctx, user, channels, ctx.at + dt.timedelta(seconds=delay))
    return ids


def perform_step(step: EscalationStep, alert: Alert, ctx: StepContext) -> StepResult:
    """Page the step's targets (or record them as suppressed) and write one OnCallAssignment per person."""
    result = StepResult()
    users, result.on_call = step_users(step, alert, ctx.at)
    for user in users:
        ids = page_user(alert, ctx, user, result.unverified)
        username = user.get_username()
        result.paged.append(username)
        result.notification_ids += ids
        if not ids:
            result.unreachable.append(username)
        OnCallAssignment.objects.create(
            organization_id=alert.organization_id, alert=alert, alert_public_id=alert.public_id,
            escalation_id=ctx.escalation_id, step_index=ctx.step_index, repeat=ctx.repeat, group_id=ctx.group_id,
            schedule=step.schedule if step.action == StepAction.NOTIFY_SCHEDULE else None,
            on_call=result.on_call, user=user, username=username, reason=step.action, notification_ids=ids,
            suppressed=bool(ctx.suppressed_reason), at=ctx.at)
    if step.action == StepAction.NOTIFY_CHANNEL:
        channels = list(step.channels.filter(organization_id=alert.organization_id, enabled=True).order_by("pk"))
        if channels:
            result.channels = [c.name for c in channels]
            result.notification_ids += _queue(alert, ctx, None, channels, ctx.at)
    return result
