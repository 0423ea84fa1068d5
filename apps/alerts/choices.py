"""Choices shared by several alert models, the evaluator, the API and the notification payloads."""

from __future__ import annotations

from django.db import models


class Severity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertState(models.TextChoices):
    """pending -> firing -> acknowledged -> resolved; firing again on recurrence (same Alert row)."""

    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


#: States in which an alert is open (counts as active for grouping, inhibition and the pages).
OPEN_STATES = (AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED)
#: States a person may be paged about.
NOTIFIABLE_STATES = (AlertState.FIRING, AlertState.ACKNOWLEDGED)


class RuleKind(models.TextChoices):
    THRESHOLD = "threshold", "Threshold"
    ABSENCE = "absence", "Absence (heartbeat, host down)"
    ANOMALY = "anomaly", "Anomaly"
    # Alerts sent in by an integration (Alertmanager, generic JSON): never evaluated, only recorded.
    EXTERNAL = "external", "External (integration)"


#: Kinds the evaluator runs; ``external`` rules only record what their integration posts.
EVALUATED_KINDS = (RuleKind.THRESHOLD, RuleKind.ABSENCE, RuleKind.ANOMALY)


class IntegrationKind(models.TextChoices):
    """Which body an integration's door reads (apps/alerts/inbound)."""

    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager (webhook v4)"
    GENERIC = "generic", "Generic JSON"


class Reducer(models.TextChoices):
    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    LAST = "last", "Last value"
    SUM = "sum", "Sum"
    COUNT = "count", "Count"
    P50 = "p50", "50th percentile"
    P95 = "p95", "95th percentile"
    P99 = "p99", "99th percentile"
    RATE = "rate", "Rate per second (counter)"


class Comparator(models.TextChoices):
    GT = ">", ">"
    GE = ">=", ">="
    LT = "<", "<"
    LE = "<=", "<="
    EQ = "==", "=="
    NE = "!=", "!="


class AnomalyMethod(models.TextChoices):
    MEAN_STDDEV = "mean_stddev", "Rolling mean ± k·stddev"
    MEDIAN_MAD = "median_mad", "Median ± k·MAD"


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (Alertmanager v4 JSON)"
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack incoming webhook"


class NotificationKind(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"
    REMINDER = "reminder", "Reminder"
    ESCALATION = "escalation", "Escalation"
    NOTICE = "notice", "Notice"  # not about an alert: a contact-method check, a shift change


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first or next attempt (next_attempt_at)
    SENDING = "sending", "Sending"  # claimed by a worker (claimed_until guards a crashed one)
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"  # gave up after the attempt cap
    SUPPRESSED = "suppressed", "Suppressed"  # recorded but not sent: silence, maintenance or inhibition


class EventActor(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    TOKEN = "token", "Token"
