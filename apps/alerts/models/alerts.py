"""Alerts, the groups that correlate them, and the timeline of their transitions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.alerts.choices import OPEN_STATES, AlertState, EventActor, Severity
from apps.core.models import OrgOwnedModel, OrgQuerySet


class AlertGroup(OrgOwnedModel):
    """Alerts of one rule that share the rule's ``group_by`` label values. Notifications are sent per
    group change (an alert joined, resolved, or the group resolved), never per alert of a storm."""

    rule = models.ForeignKey("alerts.AlertRule", on_delete=models.CASCADE, related_name="groups")
    group_key = models.CharField(max_length=64, help_text="sha256 of the group labels")
    group_labels = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.FIRING)
    # What the channels were last told: a notification is due when the group's firing set differs.
    last_notified_fingerprints = models.JSONField(default=list, blank=True, editable=False)
    last_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "group_key"], name="%(app_label)s_%(class)s_unique_rule_key"),
        ]

    def __str__(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()))
        return f"{self.rule} [{labels}]" if labels else str(self.rule)


class AlertQuerySet(OrgQuerySet):
    def open(self) -> AlertQuerySet:
        return self.filter(state__in=OPEN_STATES)

    def firing(self) -> AlertQuerySet:
        return self.filter(state=AlertState.FIRING)


class Alert(OrgOwnedModel):
    """One alert per rule x label set; its row lives on across recurrences (firing again after resolved),
    and its AlertEvents are the timeline. ``state`` changes only by compare-and-set on the old state."""

    rule = models.ForeignKey("alerts.AlertRule", on_delete=models.CASCADE, related_name="alerts")
    group = models.ForeignKey(AlertGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the sorted labels")
    labels = models.JSONField(default=dict, help_text="series labels + rule labels + alertname + severity")
    host = models.ForeignKey("hosts.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    series_id = models.BigIntegerField(null=True, blank=True)

    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.PENDING)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.CRITICAL)
    value = models.FloatField(null=True, blank=True, help_text="the reduced value at the last evaluation")
    threshold = models.FloatField(null=True, blank=True)
    # Anomaly rules: the baseline the last evaluation compared with ({method, center, spread, lower, upper,
    # training_start, training_end, samples, seasonal}), so a person can see why it fired.
    baseline = models.JSONField(null=True, blank=True)
    summary = models.CharField(max_length=1000, blank=True)
    description = models.TextField(blank=True)

    pending_since = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="firing since (this occurrence)")
    clear_since = models.DateTimeField(null=True, blank=True, help_text="value back to normal since (hysteresis)")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    # Suppression is decided when notifying; the reason is kept for the pages ("silenced by …").
    suppressed_reason = models.CharField(max_length=500, blank=True)
    inhibited_by = models.CharField(max_length=500, blank=True)
    # True once any channel was told this occurrence is firing: it must then be told it resolved.
    notified_firing = models.BooleanField(default=False)
    last_notified_at = models.DateTimeField(null=True, blank=True, help_text="for repeat_interval reminders")

    objects = AlertQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "fingerprint"],
                                    name="%(app_label)s_%(class)s_unique_rule_fingerprint"),
        ]
        indexes = [
            # Alert list page and GET /api/v1/alerts?state=…: an organization's open alerts, newest first.
            models.Index(fields=["organization", "state", "-updated_at"], name="alerts_alert_org_state_idx"),
            # Reminder sweep and inhibition: firing alerts only.
            models.Index(fields=["last_notified_at"], condition=Q(state="firing"), name="alerts_alert_firing_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.labels.get('alertname', self.rule_id)} {self.fingerprint[:8]} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def age(self) -> float:
        """Seconds since this occurrence started firing (0 when it has not)."""
        return (timezone.now() - self.started_at).total_seconds() if self.started_at else 0.0


class AlertEvent(models.Model):
    """One transition or notable step in an alert's life: the timeline on the alert page. Append-only."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                      related_name="alert_events")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=16, choices=AlertState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=AlertState.choices, blank=True)
    actor_type = models.CharField(max_length=8, choices=EventActor.choices, default=EventActor.SYSTEM)
    actor_repr = models.CharField(max_length=200, default="system")
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=1000, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="baseline, suppression, notification ids …")

    class Meta:
        indexes = [
            # The alert page's timeline.
            models.Index(fields=["alert", "time"], name="alerts_event_alert_time_idx"),
            # The overview's "recent alert events".
            models.Index(fields=["organization", "-time"], name="alerts_event_org_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id}: {self.from_state or '∅'} -> {self.to_state or '∅'} at {self.time:%Y-%m-%d %H:%M:%S}"
