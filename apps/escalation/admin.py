"""Platform admins manage schedules, overrides and calendar feeds here. Every write goes through
apps.escalation.services (validated like the API, audited in the same transaction). Layers are edited
as the API's JSON list, checked by the API's own serializer, so both doors accept exactly the same."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.alerts.models import NotificationChannel
from apps.core.admin import ReadOnlyAdminMixin
from apps.escalation import services
from apps.escalation.admin_json import clean_json_children
from apps.escalation.api.serializers import LayerSerializer, layer_data
from apps.escalation.models import CalendarFeed, OnCallSchedule, ScheduleOverride
from apps.escalation.validation import validate_time_zone

LAYERS_HELP = ('JSON list, as in the API: [{"rotation": "daily", "handoff_time": "09:00", "start_date": '
               '"2026-01-05", "members": ["alice", "bob"], "restrictions": [{"days": ["mon", "tue", "wed", '
               '"thu", "fri"], "start": "09:00", "end": "17:00"}]}]. Later layers win unless "priority" is given.')


class ScheduleForm(forms.ModelForm):
    layers_json = forms.CharField(label="Layers", widget=forms.Textarea(attrs={"rows": 14, "cols": 100}),
                                  required=False, help_text=LAYERS_HELP)

    class Meta:
        model = OnCallSchedule
        fields = ["organization", "name", "time_zone", "description", "notify_shift_changes",
                  "shift_change_channel"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            layers = [LayerSerializer(layer).data for layer in self.instance.layers.order_by("priority")]
            self.initial["layers_json"] = json.dumps([{k: v for k, v in layer.items() if k != "id"}
                                                      for layer in layers], indent=2)
        self._limit_shift_channels()

    def _limit_shift_channels(self) -> None:
        """Only user-configured channels (never escalation-managed contact channels), and on an existing
        schedule only its organization's: the service re-checks both when saving."""
        field = self.fields.get("shift_change_channel")
        if field is None:
            return
        channels = NotificationChannel.objects.user_configured().select_related("organization")
        if self.instance.pk:
            channels = channels.filter(organization_id=self.instance.organization_id)
        field.queryset = channels.order_by("organization__name", "name")

    def clean_time_zone(self) -> str:
        try:
            return validate_time_zone(self.cleaned_data["time_zone"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict[str, Any]:
        data = clean_json_children(self, super().clean(), field="layers_json", serializer_class=LayerSerializer,
                                   convert=layer_data, into="layers")
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        channel = data.get("shift_change_channel")
        if channel is not None and organization is not None and channel.organization_id != organization.pk:
            self.add_error("shift_change_channel", "Pick a channel of the schedule's organization.")
        elif data.get("notify_shift_changes") and channel is None:
            self.add_error("shift_change_channel", "Shift-change notices need a channel.")
        return data


@admin.register(OnCallSchedule)
class OnCallScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["name", "time_zone", "notify_shift_changes", "organization", "updated_at"]
    list_filter = ["organization", "notify_shift_changes"]
    search_fields = ["name", "description"]
    list_select_related = ["organization"]
    readonly_fields = ["public_id", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: OnCallSchedule | None = None) -> list[str]:
        """A schedule stays in the organization it was made in (its members and overrides belong there)."""
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: OnCallSchedule, form: Any, change: bool) -> None:
        data = form.cleaned_data
        shift = {"notify_shift_changes": bool(data.get("notify_shift_changes")),
                 "shift_change_channel": data.get("shift_change_channel")}
        if change:
            saved = services.update_schedule(schedule=obj, actor=request.user, name=data["name"],
                                             time_zone=data["time_zone"], description=data["description"],
                                             layers=data.get("layers", []), **shift)
        else:
            saved = services.create_schedule(organization=data["organization"], name=data["name"],
                                             time_zone=data["time_zone"], description=data["description"],
                                             layers=data.get("layers", []), actor=request.user, **shift)
        obj.__dict__.update(saved.__dict__)  # the admin goes on with obj (log entry, redirect)

    def delete_model(self, request: HttpRequest, obj: OnCallSchedule) -> None:
        services.delete_schedule(schedule=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for schedule in queryset:
            services.delete_schedule(schedule=schedule, actor=request.user)


class OverrideForm(forms.ModelForm):
    class Meta:
        model = ScheduleOverride
        fields = ["schedule", "user", "start", "end"]

    def clean(self) -> dict[str, Any]:
        """The service's checks as form errors (it re-checks them when saving)."""
        data = super().clean()
        schedule, user = data.get("schedule") or getattr(self.instance, "schedule", None), data.get("user")
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "An override must end after it starts.")
        if schedule is not None and user is not None:
            try:
                services.check_members(schedule.organization, [user], field_name="user")
            except ValidationError as exc:
                self.add_error(None, exc)
        return data

    def _post_clean(self) -> None:
        """Skip the model's own full_clean: the instance has no organization until the service sets it."""


@admin.register(ScheduleOverride)
class ScheduleOverrideAdmin(admin.ModelAdmin):
    """Overrides: added, changed and removed through the services, like the API."""

    form = OverrideForm
    list_display = ["schedule", "user", "start", "end", "organization"]
    list_filter = ["organization"]
    search_fields = ["schedule__name", "user__username"]
    list_select_related = ["schedule", "user", "organization"]
    raw_id_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: ScheduleOverride | None = None) -> list[str]:
        """An override stays on its schedule (and so in its organization)."""
        return ["schedule"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: ScheduleOverride, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.update_override(override=obj, actor=request.user, user=data["user"], start=data["start"],
                                     end=data["end"])
            return
        saved = services.create_override(schedule=data["schedule"], user=data["user"], start=data["start"],
                                         end=data["end"], actor=request.user)
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: ScheduleOverride) -> None:
        services.delete_override(override=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for override in queryset.select_related("user"):
            services.delete_override(override=override, actor=request.user)


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Feeds are made by their users; an admin can only see them and revoke them."""

    list_display = ["user", "organization", "created_at", "last_fetched_at", "revoked_at"]
    list_filter = ["organization"]
    search_fields = ["user__username"]
    list_select_related = ["user", "organization"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected calendar feeds")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for feed in queryset:
            services.revoke_calendar_feed(feed=feed, actor=request.user)
        messages.success(request, "Revoked.")


from apps.escalation import admin_policies  # noqa: E402, F401 (registers the policy admins)
