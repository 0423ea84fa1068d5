"""Group-level escalation: routes that point an alert group at a policy by its labels (as Alertmanager
routes do), and the one run per group that pages for the whole group instead of per alert."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models
from django.db.models import Q

from apps.core.models import OrgOwnedModel, OrgQuerySet
from apps.escalation.choices import RunStatus


class GroupRoute(OrgOwnedModel):
    """Groups whose labels match ``matchers`` (and, if set, of ``rule``) escalate once per group through
    ``policy``. Routes are tried by ``position`` (then age); the first match wins; a group no route
    matches falls back to its rule's policy, which escalates each alert on its own."""

    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0, help_text="routes are tried in this order; first match wins")
    matchers = models.JSONField(default=dict, blank=True,
                                help_text='label -> value, all must equal: {"team": "storage"}; {} matches any group')
    rule = models.ForeignKey("alerts.AlertRule", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="escalation_group_routes", help_text="only this rule's groups (optional)")
    policy = models.ForeignKey("escalation.EscalationPolicy", on_delete=models.CASCADE, related_name="group_routes")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name",
                                    violation_error_message="This organization already has a group route with "
                                                            "this name."),
        ]
        indexes = [
            # route_for_group: an organization's enabled routes in order, on every firing transition.
            models.Index(fields=["organization", "position"], condition=Q(enabled=True),
                         name="escalation_grouproute_org_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} -> {self.policy}"

    def matches(self, rule_id: int, labels: Mapping[str, str]) -> bool:
        """Whether a group of rule ``rule_id`` with (common) ``labels`` takes this route."""
        if self.rule_id is not None and self.rule_id != rule_id:
            return False
        return all(str(labels.get(name, "")) == str(value) for name, value in (self.matchers or {}).items())


class GroupEscalationRun(models.Model):
    """Where a group's escalation stands: one per alert group, guarded like an alert's run by
    ``active_escalation_id`` (it changes when the escalation starts, stands down or ends, so a queued step
    task carrying an old id finds itself stale). ``lead_alert`` is the alert that started this episode:
    timeline entries and on-call assignments are written on it."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    group = models.OneToOneField("alerts.AlertGroup", on_delete=models.CASCADE, related_name="escalation_run")
    route = models.ForeignKey(GroupRoute, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    policy = models.ForeignKey("escalation.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="group_runs")
    lead_alert = models.ForeignKey("alerts.Alert", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.ENDED)
    active_escalation_id = models.UUIDField(null=True, blank=True)
    step_index = models.PositiveIntegerField(default=0)
    repeat = models.PositiveIntegerField(default=0, help_text="which pass over the steps (0 = the first)")
    next_step_at = models.DateTimeField(null=True, blank=True)
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    steps_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        indexes = [
            # sweep_escalations: live group runs whose next step is overdue.
            models.Index(fields=["next_step_at"], condition=Q(status__in=["active", "acknowledged"]),
                         name="escalation_grouprun_due_idx"),
        ]

    def __str__(self) -> str:
        return f"escalation of group {self.group_id}: {self.status} step {self.step_index} repeat {self.repeat}"
