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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from apps.alerts import suppression
from apps.alerts.choices import NOTIFIABLE_STATES, AlertState, NotificationKind
from apps.alerts.models import Alert, AlertGroup, AlertRule, Notification
from apps.alerts.services import bulk, messages, outbox

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


def groups_for(wanted: Iterable[tuple[AlertRule, Mapping[str, str]]]) -> dict[tuple[int, str], AlertGroup]:
    """(rule id, group key) -> group for many (rule, labels) at once: two queries, plus one insert for the
    missing ones (race-safe on the unique (rule, group_key), like :func:`group_for`)."""
    values: dict[tuple[int, str], tuple[AlertRule, dict[str, str]]] = {}
    for rule, labels in wanted:
        group_labels = group_labels_for(rule, labels)
        values[(rule.pk, group_key(group_labels))] = (rule, group_labels)
    if not values:
        return {}

    def existing() -> dict[tuple[int, str], AlertGroup]:
        rows = AlertGroup.objects.filter(rule_id__in={r for r, _ in values}, group_key__in={k for _, k in values})
        return {(g.rule_id, g.group_key): g for g in rows if (g.rule_id, g.group_key) in values}

    found = existing()
    if len(found) < len(values):
        AlertGroup.objects.bulk_create([
            AlertGroup(organization_id=rule.organization_id, rule=rule, group_key=key, group_labels=labels,
                       state=AlertState.PENDING)
            for (_, key), (rule, labels) in values.items() if (rule.pk, key) not in found
        ], ignore_conflicts=True, batch_size=1000)
        found = existing()
    return found


@dataclass(slots=True)
class GroupChange:
    """What one group sync did (for tests, the timeline and logs)."""

    notifications: list[Notification] = field(default_factory=list)
    told_firing: list[str] = field(default_factory=list)
    told_resolved: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


def _apply_suppressions(alerts: Sequence[Alert], found: Mapping[int, suppression.Suppression | None]) -> None:
    """Store each alert's suppression reason where it changed: one UPDATE per distinct reason."""
    changed: dict[tuple[str, str], list[int]] = {}
    for alert in alerts:
        cause = found.get(alert.pk)
        reason = cause.reason[:500] if cause else ""
        inhibited = reason if cause and cause.kind == INHIBITION else ""
        if (alert.suppressed_reason, alert.inhibited_by) != (reason, inhibited):
            alert.suppressed_reason, alert.inhibited_by = reason, inhibited
            changed.setdefault((reason, inhibited), []).append(alert.pk)
    for (reason, inhibited), ids in changed.items():
        Alert.objects.filter(pk__in=ids).update(suppressed_reason=reason, inhibited_by=inhibited)


def sync_group(group_id: int, *, at: dt.datetime, forced: Collection[str] = (), recheck: bool = False) -> GroupChange:
    """Notify the group's channels if the group changed since they were last told. ``forced``: fingerprints
    whose message must go out although the firing set is the same (severity changed); ``recheck``: look
    again even if nothing changed (a suppression may have ended). Call inside the transition's transaction."""
    return sync_groups({group_id: forced}, at=at, recheck=recheck)[group_id]


def sync_groups(changes: Mapping[int, Collection[str]], *, at: dt.datetime,
                recheck: bool = False) -> dict[int, GroupChange]:
    """:func:`sync_group` for many groups (group id -> forced fingerprints) in a fixed number of
    statements: a storm of a thousand rules that each opened an alert costs the same dozen queries as
    one. Group rows are locked in id order. Call inside the transition's transaction."""
    ids = sorted(changes)
    if not ids:
        return {}
    # Lock the group rows only (not the joined rule and organization rows, which every insert references).
    groups = list(AlertGroup.objects.select_for_update(of=("self",), no_key=True)
                  .select_related("rule", "organization").filter(pk__in=ids).order_by("pk"))
    firing_of: dict[int, list[Alert]] = {}
    for alert in (Alert.objects.filter(group_id__in=ids, state__in=NOTIFIABLE_STATES).select_related("organization")
                  .order_by("group_id", "fingerprint")):
        firing_of.setdefault(alert.group_id, []).append(alert)  # type: ignore[arg-type]
    quiet = [g.pk for g in groups if g.pk not in firing_of]
    pending = set(Alert.objects.filter(group_id__in=quiet, state=AlertState.PENDING)
                  .values_list("group_id", flat=True).distinct()) if quiet else set()
    result: dict[int, GroupChange] = {}
    moved: list[AlertGroup] = []
    deciding: list[tuple[AlertGroup, list[Alert], str]] = []
    now = timezone.now()
    for group in groups:
        firing = firing_of.get(group.pk, [])
        state = AlertState.FIRING if firing else AlertState.PENDING if group.pk in pending else AlertState.RESOLVED
        result[group.pk] = GroupChange()
        forced = changes[group.pk]
        if not (recheck or forced or {a.fingerprint for a in firing} != set(group.last_notified_fingerprints)):
            if group.state != state:
                group.state, group.updated_at = state, now
                moved.append(group)
            continue
        deciding.append((group, firing, state))
    if moved:
        bulk.apply([bulk.Change(pk=g.pk, old=None, guard={}, fields={"state": g.state}) for g in moved],
                   model=AlertGroup)
    if not deciding:
        return result

    # Anything told firing is told resolved, suppression or not (house rule).
    resolved_of: dict[int, list[Alert]] = {}
    for alert in (Alert.objects.filter(group_id__in=[g.pk for g, _, _ in deciding], notified_firing=True)
                  .exclude(state__in=NOTIFIABLE_STATES).select_related("organization")
                  .order_by("group_id", "fingerprint")):
        resolved_of.setdefault(alert.group_id, []).append(alert)  # type: ignore[arg-type]
    every = [alert for _, firing, _ in deciding for alert in firing]
    found = suppression.suppressions_for(every, at=at)
    _apply_suppressions(every, found)
    channels_of = outbox.channels_of_rules({g.rule_id for g, _, _ in deciding})
    rows: list[Notification] = []
    rows_of: dict[int, list[Notification]] = {}
    told: list[int] = []
    untold: list[int] = []
    for group, firing, state in deciding:
        change, forced = result[group.pk], changes[group.pk]
        resolved = resolved_of.get(group.pk, [])
        send = [a for a in firing if found.get(a.pk) is None]
        suppressed = [(a, found[a.pk]) for a in firing if found.get(a.pk) is not None]
        news = [a for a in send if not a.notified_firing or a.fingerprint in forced]
        channels = channels_of.get(group.rule_id, [])
        if news or resolved:
            body = messages.group_body(group=group, firing=send, resolved=resolved, at=at)
            kind = NotificationKind.FIRING if send else NotificationKind.RESOLVED
            only = (send + resolved)[0] if len(send) + len(resolved) == 1 else None
            rows_of[group.pk] = outbox.notification_rows(group=group, body=body, kind=kind, channels=channels,
                                                         alert=only, at=at)
            change.told_firing = [a.fingerprint for a in send]
            change.told_resolved = [a.fingerprint for a in resolved]
            told += [a.pk for a in send]
            untold += [a.pk for a in resolved]
            for alert in send:
                alert.notified_firing, alert.last_notified_at = True, at
        else:
            before = set(group.last_notified_fingerprints)
            fresh = [(a, s) for a, s in suppressed if a.fingerprint not in before or a.fingerprint in forced]
            if fresh:
                body = messages.group_body(group=group, firing=[a for a, _ in fresh], resolved=[], at=at)
                only = fresh[0][0] if len(fresh) == 1 else None
                rows_of[group.pk] = outbox.notification_rows(
                    group=group, body=body, kind=NotificationKind.FIRING, channels=channels, alert=only, at=at,
                    suppressed_reason=fresh[0][1].reason)  # type: ignore[union-attr]
        change.suppressed = [a.fingerprint for a, _ in suppressed]
        rows += rows_of.get(group.pk, [])
        if rows_of.get(group.pk) and (news or resolved):
            group.last_notified_at = at
        group.last_notified_fingerprints = [a.fingerprint for a in firing]
        group.state, group.updated_at = state, now
    outbox.save(rows)
    for group_id, saved in rows_of.items():
        result[group_id].notifications = saved
    if told:
        Alert.objects.filter(pk__in=told).update(notified_firing=True, last_notified_at=at)
    if untold:
        Alert.objects.filter(pk__in=untold).update(notified_firing=False)
    # The group rows are locked: a plain set-based write, one statement for every group decided.
    bulk.apply([bulk.Change(pk=g.pk, old=None, guard={},
                            fields={"last_notified_fingerprints": g.last_notified_fingerprints, "state": g.state,
                                    "last_notified_at": g.last_notified_at})
                for g, _, _ in deciding], model=AlertGroup)
    return result


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
    for alert in claimed:
        alert.last_notified_at = at
    found = suppression.suppressions_for(claimed, at=at)
    send = [alert for alert in claimed if found.get(alert.pk) is None]
    if not send:
        return []
    body = messages.group_body(group=group, firing=send, resolved=[], at=at)
    only = send[0] if len(send) == 1 else None
    return outbox.create_notifications(group=group, body=body, kind=NotificationKind.REMINDER,
                                       channels=outbox.rule_channels(group), alert=only, at=at)
