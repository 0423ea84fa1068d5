"""The engine's state per alert, and the record of who was on call and who was paged."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import OrgQuerySet
from apps.escalation.choices import RunStatus


class EscalationRun(models.Model):
    """Where an alert's escalation stands. ``active_escalation_id`` changes whenever the escalation
    (re)starts, stands down or ends, so a queued step task carrying an old id (or an old step/repeat)
    finds it stale and does nothing: the compare-and-set that makes duplicates and stale tasks harmless."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    alert = models.OneToOneField("alerts.Alert", on_delete=models.CASCADE, related_name="escalation_run")
    policy = models.ForeignKey("escalation.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.ACTIVE)
    active_escalation_id = models.UUIDField(null=True, blank=True)
    step_index = models.PositiveIntegerField(default=0)
    repeat = models.PositiveIntegerField(default=0, help_text="which pass over the steps (0 = the first)")
    next_step_at = models.DateTimeField(null=True, blank=True)
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    steps_done = models.PositiveIntegerField(default=0)
    # The alert's acknowledged_at this run already stood down for: an acknowledged alert with a newer one
    # is an acknowledgement whose hook has not arrived yet (stand down), not a re-escalation (keep paging).
    ack_seen_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # sweep_escalations: live runs whose next step is overdue.
            models.Index(fields=["next_step_at"], condition=Q(status__in=["active", "acknowledged"]),
                         name="escalation_run_due_idx"),
        ]

    def __str__(self) -> str:
        return f"escalation of alert {self.alert_id}: {self.status} step {self.step_index} repeat {self.repeat}"


class OnCallAssignment(models.Model):
    """One person paged by one step: who it was, why (a schedule's on-call, named on the step, …) and who
    the schedule said was on call then -- kept for later questions ("who had the pager at 03:12?")."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    # SET_NULL: the record outlives a deleted rule and its alerts.
    alert = models.ForeignKey("alerts.Alert", null=True, on_delete=models.SET_NULL, related_name="+")
    alert_public_id = models.UUIDField()
    # Set when a group escalation paged (for the whole group; ``alert`` is then the group's lead alert).
    group = models.ForeignKey("alerts.AlertGroup", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    escalation_id = models.UUIDField()
    step_index = models.PositiveIntegerField()
    repeat = models.PositiveIntegerField()
    schedule = models.ForeignKey("escalation.OnCallSchedule", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    on_call = models.JSONField(default=list, blank=True, help_text="usernames the schedule had on call")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    reason = models.CharField(max_length=32)
    notification_ids = models.JSONField(default=list, blank=True)
    suppressed = models.BooleanField(default=False)
    at = models.DateTimeField()

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            # The step's compare-and-set already runs it once; this makes a second page of one person by
            # one step impossible even if that guard were wrong.
            models.UniqueConstraint(fields=["escalation_id", "step_index", "repeat", "username"],
                                    name="%(app_label)s_%(class)s_once_per_step"),
        ]
        indexes = [
            # The alert page and the API: an alert's pages, in order.
            models.Index(fields=["alert", "at"], name="escalation_assign_alert_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username} paged for alert {self.alert_public_id} (step {self.step_index})"
