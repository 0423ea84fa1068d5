"""Admin for integrations. Writes go through apps.alerts.inbound.services (validated, audited); the token is
shown once, in the message after adding or rotating. Channels, group_by and the repeat interval are edited
on the integration's rule (linked)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.alerts.inbound import services
from apps.alerts.models import Integration
from apps.core.errors import error_sentence


class IntegrationForm(forms.ModelForm):
    class Meta:
        model = Integration
        fields = ["organization", "name", "kind", "enabled"]

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors or self.instance.organization_id is None:
            return
        try:
            services._check_name(self.instance.organization_id, self.cleaned_data.get("name"),
                                 exclude_pk=self.instance.pk)
        except ValidationError as exc:
            self._update_errors(exc)


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = ["name", "kind", "enabled", "token_prefix", "last_received_at", "organization"]
    list_filter = ["kind", "enabled", "organization"]
    search_fields = ["name", "token_prefix"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["public_id", "rule_link", "token_prefix", "token_rotated_at", "last_received_at",
                       "created_at", "updated_at"]
    actions = ["rotate_tokens"]

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization", "kind"] if obj is not None else fields

    @admin.display(description="rule (channels, group_by, repeat interval)")
    def rule_link(self, obj: Integration) -> str:
        if not obj.rule_id:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:alerts_alertrule_change", args=[obj.rule_id]),
                           obj.rule.name)

    def save_model(self, request: HttpRequest, obj: Integration, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in ("name", "enabled")}
            if changes:
                services.update_integration(integration=obj, actor=request.user, **changes)
            return
        integration, token = services.create_integration(
            organization=obj.organization, actor=request.user, name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"], enabled=form.cleaned_data["enabled"])
        obj.__dict__.update(integration.__dict__)
        self._show_token(request, integration, token)

    def _show_token(self, request: HttpRequest, integration: Integration, token: str) -> None:
        self.message_user(request, f"The token of {integration.name!r} (shown once): {token}", messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: Integration) -> None:
        services.delete_integration(integration=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for integration in queryset:
            services.delete_integration(integration=integration, actor=request.user)

    @admin.action(description="Rotate the token of the selected integrations")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        for integration in queryset:
            try:
                integration, token = services.rotate_integration_token(integration=integration, actor=request.user)
            except Exception as exc:  # one failure must not hide the tokens already rotated
                self.message_user(request, f"{integration.name}: {error_sentence(exc)}", messages.ERROR)
                continue
            self._show_token(request, integration, token)
