"""Platform admins manage tenants here. Organization edits go through the audited mixin; memberships
(their own admin and the inline on the organization) through the membership services, so the owner rules
hold here as in the API; tokens are created through `issue_token` so the plaintext is shown exactly once,
and revoked (never edited)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.core.errors import error_sentence
from apps.core.roles import Role
from apps.organizations.models import AgentToken, Membership, Organization
from apps.organizations.services import add_member, change_role, issue_token, remove_member, revoke_token


class ServiceErrorsAsMessagesMixin:
    """A service's ValidationError (e.g. removing the last owner) raised while the admin saves or deletes
    becomes an error message instead of a 500. The admin's change and delete views run in one transaction,
    so everything the submission did is rolled back before the message is shown."""

    def _refused(self, request: HttpRequest, exc: ValidationError, url: str) -> HttpResponse:
        self.message_user(request, error_sentence(exc), messages.ERROR)  # type: ignore[attr-defined]
        return HttpResponseRedirect(url)

    def _changelist_url(self) -> str:
        opts = self.model._meta  # type: ignore[attr-defined]
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]
        except ValidationError as exc:
            return self._refused(request, exc, request.get_full_path())

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().delete_view(request, *args, **kwargs)  # type: ignore[misc]
        except ValidationError as exc:
            return self._refused(request, exc, self._changelist_url())

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc]
        except ValidationError as exc:  # the "delete selected" action
            return self._refused(request, exc, self._changelist_url())


class MembershipInlineForm(forms.ModelForm):
    """An existing row's user is fixed: moving a membership to someone else is a removal plus an add."""

    class Meta:
        model = Membership
        fields = ["user", "role"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "user" in self.fields:
            self.fields["user"].disabled = True


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipInlineForm
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


def save_membership_formset(formset: Any, actor: Any) -> None:
    """Apply an inline formset of memberships through the services: additions and promotions to owner
    first, then other role changes, then removals, so handing ownership over in one submission works."""
    formset.save(commit=False)
    for obj in formset.new_objects:
        add_member(organization=obj.organization, user=obj.user, role=obj.role, actor=actor)
    changed = sorted((obj for obj, _ in formset.changed_objects), key=lambda m: m.role != Role.OWNER)
    for obj in changed:
        change_role(membership=obj, role=obj.role, actor=actor)
    for obj in formset.deleted_objects:
        remove_member(membership=obj, actor=actor)


@admin.register(Organization)
class OrganizationAdmin(ServiceErrorsAsMessagesMixin, AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "is_active", "member_count", "created_at"]
    list_filter = ["plan", "is_active", "auto_register_hosts"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["public_id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "plan", "is_active", "auto_register_hosts", "public_id"]}),
        ("Retention overrides (days; empty = plan default)", {
            "fields": ["retention_raw_days", "retention_1m_days", "retention_5m_days", "retention_1h_days",
                       "retention_1d_days"],
        }),
        ("Times", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_member_count=Count("memberships"))

    @admin.display(description="Members", ordering="_member_count")
    def member_count(self, obj: Organization) -> int:
        return obj._member_count  # type: ignore[attr-defined]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Membership rows edited inline go through the membership services (audited, owner rules)."""
        if formset.model is Membership:
            save_membership_formset(formset, request.user)
        else:
            super().save_formset(request, form, formset, change)


@admin.register(Membership)
class MembershipAdmin(ServiceErrorsAsMessagesMixin, admin.ModelAdmin):
    """Every add, role change and removal goes through the membership services, which audit it."""

    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name", "organization__slug"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        # Only the role of an existing membership changes; another user or organization is a new membership.
        return ["user", "organization"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            saved = change_role(membership=obj, role=obj.role, actor=request.user)
        else:
            saved = add_member(organization=obj.organization, user=obj.user, role=obj.role, actor=request.user)
        obj.pk = saved.pk
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        remove_member(membership=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():  # all or nothing: one refused removal (the last owner) undoes the others
            for membership in queryset.order_by("pk"):
                remove_member(membership=membership, actor=request.user)


@admin.register(AgentToken)
class AgentTokenAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "organization", "prefix", "scope", "status", "expires_at", "last_used_at", "created_at"]
    list_filter = ["scope", "organization", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "organization__name", "organization__slug"]
    list_select_related = ["organization", "created_by"]
    readonly_fields = ["prefix", "public_id", "last_used_at", "revoked_at", "created_by", "created_at"]
    actions = ["revoke_selected"]
    autocomplete_fields = ["organization"]

    def get_fields(self, request: HttpRequest, obj: AgentToken | None = None) -> list[str]:
        if obj is None:
            return ["organization", "name", "scope", "expires_at"]
        return ["organization", "name", "scope", "expires_at", "prefix", "public_id", "created_by",
                "last_used_at", "revoked_at", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: AgentToken | None = None) -> list[str]:
        if obj is None:
            return []
        # A token's organization and scope are fixed at issue: changing them would silently widen access.
        return [*self.readonly_fields, "organization", "scope"]

    @admin.display(description="Status")
    def status(self, obj: AgentToken) -> str:
        if obj.is_revoked:
            return "revoked"
        if obj.is_expired(timezone.now()):
            return "expired"
        return "active"

    def save_model(self, request: HttpRequest, obj: AgentToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, plaintext = issue_token(organization=obj.organization, name=obj.name, scope=obj.scope,
                                       expires_at=obj.expires_at, actor=request.user)
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        messages.warning(request, f"New token (copy it now; it is not shown again): {plaintext}")

    def has_delete_permission(self, request: HttpRequest, obj: AgentToken | None = None) -> bool:
        return False  # tokens are revoked, which keeps their history and audit trail

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            revoke_token(token=token, actor=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).")
