"""Helpers for the lifecycle tests: a rule wired to channels, outcomes and a clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.alerts.models import AlertRule, Notification
from apps.alerts.outcomes import Outcome
from tests.alerts.factories import AlertRuleFactory, NotificationChannelFactory

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def breach(value: float = 95.0, severity: str = "critical", host: str = "web-1", **labels: str) -> Outcome:
    return Outcome(labels={"host": host, **labels}, value=value, severity=severity, threshold=90.0)


def clear(value: float = 10.0, host: str = "web-1", **labels: str) -> Outcome:
    return Outcome(labels={"host": host, **labels}, value=value, severity=None, threshold=90.0)


def rule_with_channels(org: Any, channels: int = 1, **fields: Any) -> AlertRule:
    rule = AlertRuleFactory(organization=org, **fields)
    rule.channels.set([NotificationChannelFactory(organization=org) for _ in range(channels)])
    return rule


def notifications(rule: AlertRule, **filters: Any) -> list[Notification]:
    return list(Notification.objects.filter(group__rule=rule, **filters).order_by("pk"))
