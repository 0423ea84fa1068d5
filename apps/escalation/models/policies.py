"""Escalation policies, their steps, and which policy an alert rule uses. Routing lives here, not on
AlertRule: alerts sits below escalation and must not know that policies exist."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.core.models import OrgOwnedModel, TimeStampedModel
from apps.escalation.choices import StepAction


class EscalationPolicy(OrgOwnedModel):
    """Ordered steps, each followed by a wait; the whole list runs ``repeat_count`` more times (no cap:
    0 = once) while nobody acknowledges. ``ack_timeout_seconds`` (0 = never) re-escalates an alert that
    was acknowledged but is still not resolved after that long."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    repeat_count = models.PositiveIntegerField(default=0, help_text="extra passes over the steps; 0 = none")
    ack_timeout_seconds = models.PositiveIntegerField(default=0, help_text="re-escalate after; 0 = never")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name",
                                    violation_error_message="This organization already has a policy with this name."),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationStep(TimeStampedModel):
    """One step: page a schedule's on-call, some users or some channels, then wait ``wait_seconds``
    before the next step. A pure child of its policy (reached through it, never listed alone)."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=StepAction.choices)
    # SET_NULL: deleting a schedule or channel must not silently delete the step; the engine records a
    # step without a target on the alert's timeline instead.
    schedule = models.ForeignKey("escalation.OnCallSchedule", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="escalation_steps")
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    channels = models.ManyToManyField("alerts.NotificationChannel", blank=True, related_name="+")
    wait_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="%(app_label)s_%(class)s_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} step {self.position}: {self.action}"

    def clean(self) -> None:
        if self.action == StepAction.NOTIFY_SCHEDULE and self.schedule_id is None:
            raise ValidationError({"schedule": "A notify_schedule step needs a schedule."})


class RulePolicy(OrgOwnedModel):
    """Alert rule -> escalation policy (at most one policy per rule)."""

    rule = models.OneToOneField("alerts.AlertRule", on_delete=models.CASCADE, related_name="escalation_route")
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="routes")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.rule} -> {self.policy}"
