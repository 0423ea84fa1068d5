"""The notification outbox: one Notification row per enabled channel, written in the transaction of the
change it reports and handed to delivery only once that transaction commits (``delivery.enqueue``), so a
rolled-back transition never pages and a committed one is never lost (the sweep retries the rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from apps.alerts import delivery
from apps.alerts.choices import NotificationKind, NotificationStatus
from apps.alerts.models import Alert, AlertGroup, Notification, NotificationChannel
from apps.alerts.services.messages import for_channel


def rule_channels(group: AlertGroup) -> list[NotificationChannel]:
    """The enabled channels of the group's rule, in a stable order."""
    return list(group.rule.channels.filter(enabled=True).order_by("pk"))


def create_notifications(*, group: AlertGroup, body: Mapping[str, Any], kind: str,
                         channels: Sequence[NotificationChannel], alert: Alert | None = None,
                         at: dt.datetime) -> list[Notification]:
    """Queue ``body`` (an Alertmanager v4 body without receiver) for each channel, delivered after commit.
    ``alert`` is set when the message is about one alert (a single-alert group, an escalation step)."""
    rows = Notification.objects.bulk_create([
        Notification(organization_id=group.organization_id, channel=channel, group=group, alert=alert, kind=kind,
                     payload=for_channel(body, channel.name), next_attempt_at=at)
        for channel in channels
    ])
    delivery.enqueue([row.pk for row in rows])
    return rows


def record_suppressed(*, group: AlertGroup, body: Mapping[str, Any], kind: str,
                      channels: Sequence[NotificationChannel], reason: str, alert: Alert | None = None,
                      at: dt.datetime) -> list[Notification]:
    """Ledger rows for a message that suppression stopped: shown on the pages, never delivered."""
    return Notification.objects.bulk_create([
        Notification(organization_id=group.organization_id, channel=channel, group=group, alert=alert, kind=kind,
                     status=NotificationStatus.SUPPRESSED, suppressed_reason=reason[:500],
                     payload=for_channel(body, channel.name), next_attempt_at=at)
        for channel in channels
    ])


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
