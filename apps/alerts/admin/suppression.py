"""Admin for silences and maintenance windows. Every write goes through apps.alerts.services.suppression
(validated, audited in the same transaction): silences are added and expired (never edited or deleted,
like the API); maintenance windows are added, changed and deleted with their hosts and services."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.alerts.models import MaintenanceWindow, Silence
from apps.alerts.services.suppression import (
    create_maintenance_window,
    create_silence,
    delete_maintenance_window,
    expire_silence,
    update_maintenance_window,
)
from apps.alerts.suppression import clean_matchers, clean_schedule, next_occurrences, silence_state


def _add_errors(form: forms.ModelForm, error: ValidationError, renames: dict[str, str]) -> None:
    for field, problems in error.message_dict.items():
        name = renames.get(field, field)
        form.add_error(name if name in form.fields else None, problems)


class SilenceForm(forms.ModelForm):
    matchers = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}),
                               help_text='alertname="cpu",host=~"db-.*" or a JSON list of {"name", "op", "value"}')

    class Meta:
        model = Silence
        fields = ["organization", "matchers", "starts_at", "ends_at", "comment"]

    def clean_matchers(self) -> list[dict[str, str]]:
        text = self.cleaned_data["matchers"].strip()
        try:
            raw = json.loads(text) if text.startswith("[") else text
        except ValueError as exc:
            raise forms.ValidationError(f"invalid JSON: {exc}") from None
        try:
            return clean_matchers(raw)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["matchers"]) from None


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    form = SilenceForm
    list_display = ["public_id", "matchers_text", "starts_at", "ends_at", "state", "created_by_repr", "organization"]
    list_filter = ["organization"]
    search_fields = ["comment", "created_by_repr"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["public_id", "created_by_repr", "created_at", "updated_at"]
    actions = ["expire_selected"]

    @admin.display(description="Matchers")
    def matchers_text(self, obj: Silence) -> str:
        return ",".join(f'{m["name"]}{m["op"]}"{m["value"]}"' for m in obj.matchers)

    @admin.display(description="State")
    def state(self, obj: Silence) -> str:
        return silence_state(obj, timezone.now())

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A silence is added and expired, never edited: the change page is read-only.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Silence, form: Any, change: bool) -> None:
        data = form.cleaned_data
        silence = create_silence(organization=data["organization"], matchers=data["matchers"],
                                 starts_at=data["starts_at"], ends_at=data["ends_at"], comment=data["comment"],
                                 actor=request.user)
        obj.__dict__.update(silence.__dict__)

    @admin.action(description="Expire selected silences now")
    def expire_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for silence in queryset:
            expire_silence(silence=silence, actor=request.user)
        self.message_user(request, f"Expired {queryset.count()} silence(s).", messages.SUCCESS)


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["organization", "name", "starts_at", "duration_seconds", "rrule", "time_zone", "until", "hosts",
                  "host_tags", "services", "comment"]

    def clean(self) -> dict[str, Any]:
        """The services' checks as form errors: schedule, and hosts and services of the organization."""
        data = super().clean()
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        if data.get("starts_at") is not None and data.get("duration_seconds"):
            try:
                clean_schedule(starts_at=data["starts_at"], duration_seconds=data["duration_seconds"],
                               rrule=data.get("rrule") or "", time_zone=data.get("time_zone") or "UTC",
                               until=data.get("until"))
            except ValidationError as exc:
                _add_errors(self, exc, {"duration": "duration_seconds"})
        for field in ("hosts", "services"):
            foreign = [str(o) for o in data.get(field) or () if organization and o.organization_id != organization.pk]
            if foreign:
                self.add_error(field, f"not in this organization: {', '.join(foreign)}")
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = ["name", "starts_at", "duration_seconds", "rrule", "time_zone", "next_start", "organization"]
    list_filter = ["organization", "time_zone"]
    search_fields = ["name", "comment"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization", "hosts", "services"]
    readonly_fields = ["public_id", "created_by_repr", "created_at", "updated_at"]

    @admin.display(description="Next occurrence")
    def next_start(self, obj: MaintenanceWindow) -> Any:
        upcoming = next_occurrences(obj, timezone.now(), 1)
        return upcoming[0][0] if upcoming else "-"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: MaintenanceWindow, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in form.fields if name != "organization"}
        if change:
            window = update_maintenance_window(window=obj, actor=request.user, **data)
        else:
            window = create_maintenance_window(organization=form.cleaned_data["organization"], actor=request.user,
                                               **data)
        obj.__dict__.update(window.__dict__)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Hosts and services were set by the service, inside its audited transaction."""

    def delete_model(self, request: HttpRequest, obj: MaintenanceWindow) -> None:
        delete_maintenance_window(window=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for window in queryset:
            delete_maintenance_window(window=window, actor=request.user)
