"""Alert groups: the alerts of one rule that share the values of its ``group_by`` labels notify as one.

A group is notified when what its channels were told changes: an alert joined the firing set, one that was
told firing resolved, or a forced change (severity). The decision runs inside the transaction of the
transition under a row lock on the group, so the first alert of a group is notified at once (no
group_wait), a storm of 200 alerts in one evaluation makes one message per channel, and two workers never
send the same change twice (the second sees the group's ``last_notified_fingerprints`` already moved)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from apps.alerts import suppression
from apps.alerts.choices import NOTIFIABLE_STATES, AlertState, NotificationKind
from apps.alerts.models import Alert, AlertGroup, AlertRule, Notification
from apps.alerts.services import messages, outbox

INHIBITION = "inhibition"


def group_labels_for(rule: AlertRule, labels: Mapping[str, str]) -> dict[str, str]:
    """The values of the rule's ``group_by`` labels in ``labels`` (missing labels group as "")."""
    return {name: str(labels.get(name, "")) for name in rule.group_by or ()}


def group_key(group_labels: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(group_labels), sort_keys=True).encode()).hexdigest()


def group_for(rule: AlertRule, labels: Mapping[str, str]) -> AlertGroup:
    """The rule's group for these labels, created race-safely on the unique (rule, group_key)."""
    values = group_labels_for(rule, labels)
    group, _ = AlertGroup.objects.get_or_create(
        rule=rule, group_key=group_key(values),
        defaults={"organization_id": rule.organization_id, "group_labels": values, "state": AlertState.PENDING},
    )
    return group


@dataclass(slots=True)
class GroupChange:
    """What one group sync did (for tests, the timeline and logs)."""

    notifications: list[Notification] = field(default_factory=list)
    told_firing: list[str] = field(default_factory=list)
    told_resolved: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


def _apply_suppression(alert: Alert, found: suppression.Suppression | None) -> None:
    reason = found.reason[:500] if found else ""
    inhibited = reason if found and found.kind == INHIBITION else ""
    if (alert.suppressed_reason, alert.inhibited_by) != (reason, inhibited):
        alert.suppressed_reason, alert.inhibited_by = reason, inhibited
        Alert.objects.filter(pk=alert.pk).update(suppressed_reason=reason, inhibited_by=inhibited)


def _group_state(group: AlertGroup, firing: list[Alert]) -> str:
    if firing:
        return AlertState.FIRING
    if group.alerts.filter(state=AlertState.PENDING).exists():
        return AlertState.PENDING
    return AlertState.RESOLVED


def sync_group(group_id: int, *, at: dt.datetime, forced: Collection[str] = (), recheck: bool = False) -> GroupChange:
    """Notify the group's channels if the group changed since they were last told. ``forced``: fingerprints
    whose message must go out although the firing set is the same (severity changed); ``recheck``: look
    again even if nothing changed (a suppression may have ended). Call inside the transition's transaction."""
    # Lock the group row only (not the joined rule and organization rows, which every insert references).
    group = (AlertGroup.objects.select_for_update(of=("self",), no_key=True)
             .select_related("rule", "organization").get(pk=group_id))
    firing = list(group.alerts.filter(state__in=NOTIFIABLE_STATES).select_related("organization")
                  .order_by("fingerprint"))
    firing_fps = [a.fingerprint for a in firing]
    told = set(group.last_notified_fingerprints)
    state = _group_state(group, firing)
    change = GroupChange()
    if not (recheck or forced or set(firing_fps) != told):
        if group.state != state:
            AlertGroup.objects.filter(pk=group.pk).update(state=state, updated_at=timezone.now())
        return change

    # Anything told firing is told resolved, suppression or not (house rule).
    resolved = list(group.alerts.filter(notified_firing=True).exclude(state__in=NOTIFIABLE_STATES)
                    .select_related("organization").order_by("fingerprint"))
    send: list[Alert] = []
    suppressed: list[tuple[Alert, suppression.Suppression]] = []
    for alert in firing:
        found = suppression.suppression_for(alert, at=at)
        _apply_suppression(alert, found)
        if found is None:
            send.append(alert)
        else:
            suppressed.append((alert, found))
    news = [a for a in send if not a.notified_firing or a.fingerprint in forced]
    channels = outbox.rule_channels(group)
    if news or resolved:
        body = messages.group_body(group=group, firing=send, resolved=resolved, at=at)
        kind = NotificationKind.FIRING if send else NotificationKind.RESOLVED
        only = (send + resolved)[0] if len(send) + len(resolved) == 1 else None
        change.notifications = outbox.create_notifications(group=group, body=body, kind=kind, channels=channels,
                                                           alert=only, at=at)
        change.told_firing = [a.fingerprint for a in send]
        change.told_resolved = [a.fingerprint for a in resolved]
        Alert.objects.filter(pk__in=[a.pk for a in send]).update(notified_firing=True, last_notified_at=at)
        Alert.objects.filter(pk__in=[a.pk for a in resolved]).update(notified_firing=False)
        for alert in send:
            alert.notified_firing, alert.last_notified_at = True, at
    else:
        fresh = [(a, s) for a, s in suppressed if a.fingerprint not in told or a.fingerprint in forced]
        if fresh:
            body = messages.group_body(group=group, firing=[a for a, _ in fresh], resolved=[], at=at)
            only = fresh[0][0] if len(fresh) == 1 else None
            change.notifications = outbox.record_suppressed(
                group=group, body=body, kind=NotificationKind.FIRING, channels=channels, reason=fresh[0][1].reason,
                alert=only, at=at)
    change.suppressed = [a.fingerprint for a, _ in suppressed]
    fields: dict[str, object] = {"last_notified_fingerprints": firing_fps, "state": state,
                                 "updated_at": timezone.now()}
    if change.notifications and (news or resolved):
        fields["last_notified_at"] = at
    AlertGroup.objects.filter(pk=group.pk).update(**fields)
    return change


def groups_with_ended_suppression() -> list[int]:
    """Groups holding a firing alert that was suppressed when it fired and never told: the reminder sweep
    re-checks them, so an alert whose silence or maintenance ended is paged then."""
    return list(Alert.objects.filter(state=AlertState.FIRING, notified_firing=False, group__isnull=False)
                .filter(~Q(suppressed_reason="")).values_list("group_id", flat=True).distinct())


def due_for_reminder(now: dt.datetime) -> list[Alert]:
    """Firing, unacknowledged alerts told firing whose ``last_notified_at + repeat_interval`` has passed."""
    return list(Alert.objects.filter(state=AlertState.FIRING, notified_firing=True, last_notified_at__isnull=False,
                                     rule__repeat_interval_seconds__gt=0, group__isnull=False)
                .alias(due_at=ExpressionWrapper(
                    F("last_notified_at") + F("rule__repeat_interval_seconds") * dt.timedelta(seconds=1),
                    output_field=DateTimeField()))
                .filter(due_at__lte=now).order_by("group_id", "fingerprint")[:5000])


def remind_group(group_id: int, alerts: Collection[Alert], *, at: dt.datetime) -> list[Notification]:
    """One reminder per channel for the group's due ``alerts``. Each alert is claimed by compare-and-set on
    its ``last_notified_at``, so two sweeps never remind of the same alert twice; alerts suppressed now are
    claimed (their next reminder is one interval later) but left out of the message."""
    group = AlertGroup.objects.select_related("rule", "organization").get(pk=group_id)
    claimed = [alert for alert in alerts
               if Alert.objects.filter(pk=alert.pk, state=AlertState.FIRING, notified_firing=True,
                                       last_notified_at=alert.last_notified_at).update(last_notified_at=at) == 1]
    send = []
    for alert in claimed:
        alert.last_notified_at = at
        if suppression.suppression_for(alert, at=at) is None:
            send.append(alert)
    if not send:
        return []
    body = messages.group_body(group=group, firing=send, resolved=[], at=at)
    only = send[0] if len(send) == 1 else None
    return outbox.create_notifications(group=group, body=body, kind=NotificationKind.REMINDER,
                                       channels=outbox.rule_channels(group), alert=only, at=at)
