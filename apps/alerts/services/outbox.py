"""The notification outbox: one Notification row per enabled channel, written in the transaction of the
change it reports and handed to delivery only once that transaction commits (``delivery.enqueue``), so a
rolled-back transition never pages and a committed one is never lost (the sweep retries the rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from apps.alerts import delivery
from apps.alerts.choices import NotificationKind, NotificationStatus
from apps.alerts.models import Alert, AlertGroup, AlertRule, Notification, NotificationChannel
from apps.alerts.services.messages import for_channel


def rule_channels(group: AlertGroup) -> list[NotificationChannel]:
    """The enabled channels of the group's rule, in a stable order."""
    return list(group.rule.channels.filter(enabled=True).order_by("pk"))


def channels_of_rules(rule_ids: Collection[int]) -> dict[int, list[NotificationChannel]]:
    """rule id -> its enabled channels (stable order), for many rules in one query."""
    through = AlertRule.channels.through
    found: dict[int, list[NotificationChannel]] = {}
    for link in (through.objects.filter(alertrule_id__in=list(rule_ids), notificationchannel__enabled=True)
                 .select_related("notificationchannel").order_by("notificationchannel_id")):
        found.setdefault(link.alertrule_id, []).append(link.notificationchannel)
    return found


def notification_rows(*, group: AlertGroup, body: Mapping[str, Any], kind: str,
                      channels: Sequence[NotificationChannel], alert: Alert | None = None, at: dt.datetime,
                      suppressed_reason: str | None = None) -> list[Notification]:
    """Unsaved outbox rows of one message, one per channel; with ``suppressed_reason``, ledger rows that
    are never delivered. :func:`save` writes and queues them (rows of many groups at once)."""
    extra: dict[str, Any] = ({} if suppressed_reason is None else
                             {"status": NotificationStatus.SUPPRESSED, "suppressed_reason": suppressed_reason[:500]})
    return [Notification(organization_id=group.organization_id, channel=channel, group=group, alert=alert, kind=kind,
                         payload=for_channel(body, channel.name), next_attempt_at=at, **extra)
            for channel in channels]


def save(rows: Sequence[Notification]) -> list[Notification]:
    """Insert the rows in one statement; those not suppressed are delivered after commit."""
    saved = Notification.objects.bulk_create(list(rows), batch_size=1000)
    delivery.enqueue([row.pk for row in saved if row.status != NotificationStatus.SUPPRESSED])
    return saved


def create_notifications(*, group: AlertGroup, body: Mapping[str, Any], kind: str,
                         channels: Sequence[NotificationChannel], alert: Alert | None = None,
                         at: dt.datetime) -> list[Notification]:
    """Queue ``body`` (an Alertmanager v4 body without receiver) for each channel, delivered after commit.
    ``alert`` is set when the message is about one alert (a single-alert group, an escalation step)."""
    return save(notification_rows(group=group, body=body, kind=kind, channels=channels, alert=alert, at=at))


def record_suppressed(*, group: AlertGroup, body: Mapping[str, Any], kind: str,
                      channels: Sequence[NotificationChannel], reason: str, alert: Alert | None = None,
                      at: dt.datetime) -> list[Notification]:
    """Ledger rows for a message that suppression stopped: shown on the pages, never delivered."""
    return save(notification_rows(group=group, body=body, kind=kind, channels=channels, alert=alert, at=at,
                                  suppressed_reason=reason))


def create_notices(*, organization_id: int, body: Mapping[str, Any], channels: Sequence[NotificationChannel],
                   at: dt.datetime) -> list[Notification]:
    """Queue a message that is about no alert (``kind=notice``: a contact-method check, a shift change) for
    each channel, through the same outbox, retries and ledger as alert notifications. ``body`` has the
    Alertmanager v4 shape the transports render (its ``status`` is shown as the subject's tag)."""
    rows = Notification.objects.bulk_create([
        Notification(organization_id=organization_id, channel=channel, kind=NotificationKind.NOTICE,
                     payload=for_channel(body, channel.name), next_attempt_at=at)
        for channel in channels
    ])
    delivery.enqueue([row.pk for row in rows])
    return rows
