"""What to watch and when to alert."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q

from apps.alerts.choices import EVALUATED_KINDS, AnomalyMethod, Comparator, Reducer, RuleKind
from apps.core.models import OrgOwnedModel, OrgQuerySet


class AlertRuleQuerySet(OrgQuerySet):
    def enabled(self) -> AlertRuleQuerySet:
        return self.filter(enabled=True)

    def evaluated(self) -> AlertRuleQuerySet:
        """Rules the evaluator runs: not ``external`` ones, whose alerts only their integration changes."""
        return self.filter(kind__in=EVALUATED_KINDS)

    def due(self, now: dt.datetime) -> AlertRuleQuerySet:
        return self.enabled().evaluated().filter(next_evaluation_at__lte=now)


class AlertRule(OrgOwnedModel):
    """A rule evaluated per series (or per host for absence): threshold, absence or anomaly.

    Selector: ``metric`` plus ``label_matchers`` in the query API's syntax (``cpu="total",mode!~"idle|iowait"``),
    narrowed by host environment, host tags and host names when set. The ``reducer`` folds each series'
    samples over ``window_seconds`` into one value, compared with ``critical`` / ``warning``."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=16, choices=RuleKind.choices, default=RuleKind.THRESHOLD)
    # Set for rules the product creates for every organization ("host-down"); unique per organization.
    system_key = models.CharField(max_length=64, blank=True, editable=False)

    metric = models.CharField(max_length=200, blank=True, help_text="metric name; absence rules may leave it "
                              "blank to watch any sample from the selected hosts")
    label_matchers = models.CharField(max_length=2000, blank=True)
    host_environment = models.CharField(max_length=64, blank=True)
    host_tags = models.JSONField(default=dict, blank=True, help_text="every key/value must match the host's tags")
    host_names = models.JSONField(default=list, blank=True, help_text="only these hosts (empty: all)")

    reducer = models.CharField(max_length=8, choices=Reducer.choices, default=Reducer.AVG)
    window_seconds = models.PositiveIntegerField(default=300)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.GT)
    critical = models.FloatField(null=True, blank=True)
    warning = models.FloatField(null=True, blank=True)
    for_seconds = models.PositiveIntegerField(default=0, help_text="pending period before firing")
    # Hysteresis: a firing alert resolves only once the value is back past resolve_threshold (when set)
    # and has stayed clear for keep_firing_for_seconds.
    resolve_threshold = models.FloatField(null=True, blank=True)
    keep_firing_for_seconds = models.PositiveIntegerField(default=0)

    absence_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="absence: silent this long")

    anomaly_method = models.CharField(max_length=16, choices=AnomalyMethod.choices, default=AnomalyMethod.MEAN_STDDEV)
    anomaly_k = models.FloatField(default=3.0)
    training_seconds = models.PositiveIntegerField(default=7 * 86400)
    seasonal = models.BooleanField(default=False, help_text="compare with the same hour of previous weeks")

    labels = models.JSONField(default=dict, blank=True, help_text="added to every alert of the rule")
    summary_template = models.CharField(max_length=1000, blank=True)
    description_template = models.TextField(blank=True)
    channels = models.ManyToManyField("alerts.NotificationChannel", blank=True, related_name="rules")
    repeat_interval_seconds = models.PositiveIntegerField(default=4 * 3600, help_text="reminders; 0 = never")
    group_by = models.JSONField(default=list, blank=True, help_text="label names; alerts sharing them notify as one")

    evaluation_interval_seconds = models.PositiveIntegerField(default=10)
    next_evaluation_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    consecutive_errors = models.PositiveIntegerField(default=0, editable=False)

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name"),
            models.UniqueConstraint(fields=["organization", "system_key"], condition=~Q(system_key=""),
                                    name="%(app_label)s_%(class)s_unique_org_system_key"),
            models.CheckConstraint(condition=Q(window_seconds__gte=1), name="%(app_label)s_%(class)s_window_positive"),
        ]
        indexes = [
            # The beat tick's sweep: enabled rules whose next evaluation is due.
            models.Index(fields=["next_evaluation_at"], condition=Q(enabled=True), name="alerts_rule_due_idx"),
            # The ingest hook: an organization's enabled rules on the metrics a batch carried.
            models.Index(fields=["organization", "metric"], condition=Q(enabled=True),
                         name="alerts_rule_org_metric_idx"),
        ]

    def __str__(self) -> str:
        return self.name
