"""Platform admins manage tenants here. Every write goes through the audited mixin; tokens are
created through `issue_token` so the plaintext is shown exactly once, and revoked (never edited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.organizations.models import AgentToken, Membership, Organization
from apps.organizations.services import issue_token, revoke_token


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Organization)
class OrganizationAdmin(AuditedAdminMixin, admin.ModelAdmin):
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
        from django.db.models import Count

        return super().get_queryset(request).annotate(_member_count=Count("memberships"))

    @admin.display(description="Members", ordering="_member_count")
    def member_count(self, obj: Organization) -> int:
        return obj._member_count  # type: ignore[attr-defined]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Membership rows edited inline are audited like any other admin write."""
        from apps.audit.services import record_event, snapshot

        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            record_event(action="membership.deleted", actor=request.user, organization=obj.organization_id,
                         target=obj, before=snapshot(obj))
            obj.delete()
        for obj in instances:
            before = snapshot(Membership.objects.get(pk=obj.pk)) if obj.pk else None
            obj.save()
            record_event(action=f"membership.{'updated' if before else 'created'}", actor=request.user,
                         organization=obj.organization_id, target=obj, before=before, after=snapshot(obj))
        formset.save_m2m()


@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name", "organization__slug"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


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
