"""On-call schedules: layers of rotations with restrictions, and overrides. The rows only hold data;
`apps.escalation.oncall` computes who is on call from the plain values `OnCallSchedule.to_spec()`
loads, so the computation is testable without a database and identical everywhere it is used."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.core.models import OrgOwnedModel, TimeStampedModel
from apps.escalation import oncall
from apps.escalation.validation import (
    check_year,
    normalize_restrictions,
    restrictions_from_stored,
    validate_time_zone,
)
from apps.organizations.models import Membership


class OnCallSchedule(OrgOwnedModel):
    """Who is on call for a team, computed in ``time_zone`` (an IANA name) from layers and overrides."""

    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC")
    description = models.TextField(blank=True)
    # Shift-change notices: "X is now on call for <schedule>" to a channel, once per handoff.
    notify_shift_changes = models.BooleanField(default=False)
    shift_change_channel = models.ForeignKey("alerts.NotificationChannel", null=True, blank=True,
                                             on_delete=models.SET_NULL, related_name="+")
    # Who was on call at the last check (sorted user ids): the compare-and-set state of the handoff check.
    last_on_call = models.JSONField(null=True, blank=True, editable=False)
    last_on_call_checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name",
                                    violation_error_message="This organization already has a schedule with this name."),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            validate_time_zone(self.time_zone)
        except ValueError as exc:
            raise ValidationError({"time_zone": str(exc)}) from exc

    def to_spec(self, start: dt.datetime | None = None, end: dt.datetime | None = None) -> oncall.Schedule[Any]:
        """This schedule's data as plain values for `apps.escalation.oncall`, with the overrides that
        overlap [start, end) (all when no range is given). Members who are no longer active members of
        the organization become gaps: they are never put on call, and the rotation does not shift."""
        current = set(Membership.objects.filter(organization_id=self.organization_id, user__is_active=True)
                      .values_list("user_id", flat=True))
        layers = self.layers.prefetch_related("memberships__user").order_by("priority", "pk")
        overrides = self.overrides.select_related("user").order_by("created_at", "pk")
        if start is not None:
            overrides = overrides.filter(end__gt=start)
        if end is not None:
            overrides = overrides.filter(start__lt=end)
        return self.spec_from_rows(layers, overrides, current)

    def spec_from_rows(self, layers: Any, overrides: Any, current: set[int]) -> oncall.Schedule[Any]:
        """`to_spec` from rows already loaded: ``layers`` by (priority, pk) with their memberships,
        ``overrides`` oldest first, ``current`` the ids of active members. Pages that show many schedules
        load these for all of them at once (`apps.escalation.calendar`) and build each spec here."""
        specs = []
        for layer in layers:
            members = tuple(m.user if m.user_id in current else None
                            for m in sorted(layer.memberships.all(), key=lambda m: m.position))
            specs.append(oncall.Layer(priority=layer.priority, shift_seconds=layer.effective_shift_seconds,
                                      start_date=layer.start_date, handoff_time=layer.handoff_time,
                                      members=members, restrictions=restrictions_from_stored(layer.restrictions)))
        return oncall.Schedule(
            time_zone=self.time_zone, layers=tuple(specs),
            overrides=tuple(oncall.Override(user=o.user, start=o.start, end=o.end)
                            for o in overrides if o.user_id in current),
        )

    def who_is_on_call(self, at: dt.datetime) -> list[Any]:
        """The users on call at ``at`` (loads the rows, then `oncall.who_is_on_call`)."""
        return oncall.who_is_on_call(self.to_spec(at, at + dt.timedelta(microseconds=1)), at)

    def on_call_at(self, at: dt.datetime) -> tuple[list[Any], str | None]:
        """`who_is_on_call` plus where the answer came from (``override``, ``layer:<priority>``, None)."""
        return oncall.on_call_at(self.to_spec(at, at + dt.timedelta(microseconds=1)), at)

    def final_schedule(self, start: dt.datetime, end: dt.datetime) -> list[oncall.Shift[Any]]:
        """The resolved shifts in [start, end) (loads the rows, then `oncall.final_schedule`)."""
        return oncall.final_schedule(self.to_spec(start, end), start, end)


class ScheduleLayer(TimeStampedModel):
    """One rotation of a schedule. Members take turns of one day, one week or ``shift_seconds`` of
    wall-clock time, the first from ``start_date`` at ``handoff_time`` (local); ``restrictions`` (JSON,
    see `apps.escalation.validation.normalize_restrictions`) limit when the layer is on shift at all."""

    class Rotation(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        CUSTOM = "custom", "Custom shift length"

    #: Shorter turns would make a calendar range of months enumerate too many shifts.
    MIN_SHIFT_SECONDS = 900

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    schedule = models.ForeignKey(OnCallSchedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=200, blank=True)
    priority = models.PositiveIntegerField(help_text="higher wins where layers overlap")
    rotation = models.CharField(max_length=8, choices=Rotation.choices, default=Rotation.WEEKLY)
    shift_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="custom rotations only")
    start_date = models.DateField()
    handoff_time = models.TimeField()
    restrictions = models.JSONField(default=list, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="ScheduleLayerMember", related_name="+")

    class Meta:
        ordering = ["schedule", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "priority"], name="%(app_label)s_%(class)s_unique_priority",
                                    violation_error_message="Two layers of a schedule cannot share a priority."),
            models.CheckConstraint(
                condition=~models.Q(rotation="custom") | models.Q(shift_seconds__gte=900),
                name="%(app_label)s_%(class)s_custom_has_length",
                violation_error_message="A custom rotation needs shift_seconds of at least 900."),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.schedule} layer {self.priority}"

    @property
    def effective_shift_seconds(self) -> int:
        if self.rotation == self.Rotation.DAILY:
            return oncall.DAY_SECONDS
        if self.rotation == self.Rotation.WEEKLY:
            return oncall.WEEK_SECONDS
        return int(self.shift_seconds or 0)

    def clean(self) -> None:
        try:
            self.restrictions = normalize_restrictions(self.restrictions)
        except ValueError as exc:
            raise ValidationError({"restrictions": str(exc)}) from exc
        if self.start_date is not None:
            try:
                check_year(self.start_date)
            except ValueError as exc:
                raise ValidationError({"start_date": str(exc)}) from exc
        if self.rotation == self.Rotation.CUSTOM and (self.shift_seconds or 0) < self.MIN_SHIFT_SECONDS:
            raise ValidationError({"shift_seconds": f"A custom rotation needs shift_seconds of at least "
                                                    f"{self.MIN_SHIFT_SECONDS}."})
        if self.rotation != self.Rotation.CUSTOM:
            self.shift_seconds = None


class ScheduleLayerMember(models.Model):
    """A user's place in a layer's rotation. The same user may appear at several positions."""

    layer = models.ForeignKey(ScheduleLayer, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedule_turns")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["layer", "position"]
        constraints = [
            models.UniqueConstraint(fields=["layer", "position"], name="%(app_label)s_%(class)s_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.user} #{self.position} in {self.layer}"


class ScheduleOverride(OrgOwnedModel):
    """``user`` covers [start, end) on ``schedule``, beating every layer (the newest override wins
    where overrides overlap)."""

    schedule = models.ForeignKey(OnCallSchedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedule_overrides")
    start = models.DateTimeField()
    end = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")),
                                   name="%(app_label)s_%(class)s_ends_after_start",
                                   violation_error_message="An override must end after it starts."),
        ]
        indexes = [
            # to_spec(): one schedule's overrides overlapping a range (who is on call now, a calendar month).
            models.Index(fields=["schedule", "end"], name="escalation_override_sched_end"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.schedule} {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
