"""Admin for alert rules and notification channels. Every add, change and delete goes through
apps.alerts.services.config, like the API: the same validation (shown as form errors), the same audit rows,
and a changed rule is due at once. System rules (``system_key`` set, e.g. host down) can be tuned or
disabled here but not deleted, and keep their kind."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.alerts.models import AlertRule, NotificationChannel
from apps.alerts.services import config as services


class RuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ["organization", *services.RULE_FIELDS, "channels"]

    def _post_clean(self) -> None:
        """After the model's own checks, the service's: kind rules, threshold order, matchers, channels of
        the rule's organization. Errors land on their fields, as the API names them in its 400s."""
        super()._post_clean()
        if self.errors or self.instance.organization_id is None:
            return
        channels = self.cleaned_data.get("channels")
        try:
            services.validate_rule(self.instance, channels=list(channels) if channels is not None else None)
        except ValidationError as exc:
            self._update_errors(_known_fields(exc, self.fields))


class ChannelForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, required=False, assume_scheme="https",
                         help_text="webhook and slack: where to POST")

    class Meta:
        model = NotificationChannel
        fields = ["organization", *services.CHANNEL_FIELDS]

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors or self.instance.organization_id is None:
            return
        try:
            services.validate_channel(self.instance)
        except ValidationError as exc:
            self._update_errors(_known_fields(exc, self.fields))


def _known_fields(exc: ValidationError, fields: dict[str, Any]) -> ValidationError:
    """Problems on fields the form does not show (read-only ones) go to the top of the form."""
    errors: dict[str, list[str]] = {}
    for field, problems in exc.message_dict.items():
        errors.setdefault(field if field in fields else "__all__", []).extend(problems)
    return ValidationError(errors)


def _changed(form: forms.ModelForm, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in names}


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "kind", "metric", "comparator", "critical", "warning", "enabled", "system_key",
                    "last_evaluated_at", "consecutive_errors", "organization"]
    list_filter = ["kind", "enabled", "organization"]
    search_fields = ["name", "metric", "description", "system_key"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    filter_horizontal = ["channels"]
    readonly_fields = ["public_id", "system_key", "next_evaluation_at", "last_evaluated_at", "last_error",
                       "last_error_at", "consecutive_errors", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["organization", "name", "description", "enabled", "kind", "system_key", "public_id"]}),
        ("Selector", {"fields": ["metric", "label_matchers", "host_environment", "host_tags", "host_names"]}),
        ("Condition", {"fields": ["reducer", "window_seconds", "comparator", "critical", "warning", "for_seconds",
                                  "resolve_threshold", "keep_firing_for_seconds", "absence_seconds"]}),
        ("Anomaly", {"fields": ["anomaly_method", "anomaly_k", "training_seconds", "seasonal"],
                     "classes": ["collapse"]}),
        ("Notification", {"fields": ["labels", "summary_template", "description_template", "channels",
                                     "repeat_interval_seconds", "group_by"]}),
        ("Evaluation", {"fields": ["evaluation_interval_seconds", "next_evaluation_at", "last_evaluated_at",
                                   "last_error", "last_error_at", "consecutive_errors", "created_at",
                                   "updated_at"]}),
    ]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Rules may notify user-configured channels only (validate_rule refuses the others too)."""
        if db_field.name == "channels":
            kwargs["queryset"] = NotificationChannel.objects.user_configured().order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: AlertRule | None = None) -> list[str]:
        """The organization is fixed once the rule exists; a system rule also keeps its kind."""
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("organization")
            if obj.system_key:
                fields.append("kind")
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: AlertRule | None = None) -> bool:
        if obj is not None and obj.system_key:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: AlertRule, form: forms.ModelForm, change: bool) -> None:
        channels = list(form.cleaned_data.get("channels") or [])
        if change:
            changes = _changed(form, services.RULE_FIELDS)
            channels_changed = "channels" in form.changed_data
            if changes or channels_changed:
                # The form already wrote its values onto obj; the service re-reads the row under a lock.
                services.update_rule(rule=obj, actor=request.user, channels=channels if channels_changed else None,
                                     **changes)
            return
        fields = {name: form.cleaned_data[name] for name in services.RULE_FIELDS if name in form.cleaned_data}
        rule = services.create_rule(organization=obj.organization, actor=request.user, channels=channels, **fields)
        obj.__dict__.update(rule.__dict__)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Channels were set by the service (audited with the rule); the form must not set them again."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        services.delete_rule(rule=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        system = queryset.exclude(system_key="")
        if system.exists():
            self.message_user(request, "System rules cannot be deleted; disable them instead.", messages.ERROR)
        for rule in queryset.filter(system_key=""):
            services.delete_rule(rule=rule, actor=request.user)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "url", "address", "enabled", "rate_limit_per_minute", "managed_by",
                    "organization"]
    list_filter = ["kind", "enabled", "managed_by", "organization"]
    search_fields = ["name", "url", "address"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["public_id", "signing_secret", "managed_by", "created_at", "updated_at"]
    fields = ["organization", "name", "kind", "url", "address", "headers", "enabled", "rate_limit_per_minute",
              "signing_secret", "managed_by", "public_id", "created_at", "updated_at"]
    actions = ["rotate_secrets"]

    # A managed channel (``managed_by`` set) belongs to the app that made it -- a person's contact method is
    # edited there, by them -- so here it can be looked at, not changed, deleted or re-keyed.
    def has_change_permission(self, request: HttpRequest, obj: NotificationChannel | None = None) -> bool:
        if obj is not None and obj.managed_by:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: NotificationChannel | None = None) -> bool:
        if obj is not None and obj.managed_by:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: NotificationChannel | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: NotificationChannel, form: forms.ModelForm,
                   change: bool) -> None:
        if change:
            changes = _changed(form, services.CHANNEL_FIELDS)
            if changes:
                services.update_channel(channel=obj, actor=request.user, **changes)
            return
        fields = {name: form.cleaned_data[name] for name in services.CHANNEL_FIELDS if name in form.cleaned_data}
        channel = services.create_channel(organization=obj.organization, actor=request.user, **fields)
        obj.__dict__.update(channel.__dict__)

    def delete_model(self, request: HttpRequest, obj: NotificationChannel) -> None:
        services.delete_channel(channel=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.exclude(managed_by="").exists():
            self.message_user(request, "Managed channels were left alone: change them where they are managed.",
                              messages.WARNING)
        for channel in queryset.filter(managed_by=""):
            services.delete_channel(channel=channel, actor=request.user)

    @admin.action(description="Rotate the signing secret of the selected channels")
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet) -> None:
        channels = list(queryset.filter(managed_by=""))
        for channel in channels:
            services.rotate_channel_secret(channel=channel, actor=request.user)
        self.message_user(request, f"Rotated the signing secret of {len(channels)} channel(s).")
