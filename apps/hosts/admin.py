"""Platform admins browse and correct the inventory here. Host adds, renames, edits and deletes go
through apps.hosts.services (validated, audited in the same transaction, caches evicted, live pages
told), like API changes; services and edges are audited by the mixin, and edges are added through
`add_dependency` so the admin cannot create a cycle."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.hosts.graph import cycle_error
from apps.hosts.models import Host, HostStatus, Service, ServiceDependency
from apps.hosts.services import (
    INVENTORY_FIELDS,
    add_dependency,
    delete_host,
    delete_hosts,
    register_host,
    update_host,
)


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(HostStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in HostStatus.values:
            return queryset.filter_status(self.value(), timezone.now())  # type: ignore[attr-defined]
        return queryset


class ServiceInline(admin.TabularInline):
    model = Service
    extra = 0
    fields = ["name", "kind", "health_check_url"]
    show_change_link = True

    # Services are added, edited and removed on the Service page, where the organization is set and every
    # change is audited; here they are listed with a link.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "datacenter", "country", "status", "last_seen_at", "organization"]
    list_filter = [StatusFilter, "is_active", "environment", "datacenter", "country", "organization"]
    search_fields = ["name", "display_name", "tags"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["public_id", "last_seen_at", "created_at", "updated_at"]
    inlines = [ServiceInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).with_status(timezone.now())

    @admin.display(description="Status", ordering="current_status")
    def status(self, obj: Host) -> str:
        return getattr(obj, "current_status", None) or obj.status()

    def get_readonly_fields(self, request: HttpRequest, obj: Host | None = None) -> list[str]:
        """The organization is chosen when the host is added and fixed after (update_host refuses it)."""
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Host, form: Any, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data
                       if name in ("name", *INVENTORY_FIELDS)}
            if changes:
                update_host(host=obj, actor=request.user, **changes)
            return
        host = register_host(organization=obj.organization, name=obj.name, actor=request.user,
                             **{field: getattr(obj, field) for field in INVENTORY_FIELDS})
        obj.__dict__.update(host.__dict__)  # the admin goes on with obj (log entry, redirect to its page)

    def delete_model(self, request: HttpRequest, obj: Host) -> None:
        delete_host(host=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        delete_hosts(hosts=queryset, actor=request.user)


@admin.register(Service)
class ServiceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_action_prefix = "service"
    list_display = ["name", "host", "kind", "health_check_url", "organization"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "host__name", "description"]
    list_select_related = ["host", "organization"]
    autocomplete_fields = ["organization", "host"]
    readonly_fields = ["public_id", "created_at", "updated_at"]


class ServiceDependencyForm(forms.ModelForm):
    class Meta:
        model = ServiceDependency
        fields = ["organization", "upstream_host", "upstream_service", "downstream_host", "downstream_service"]

    def clean(self) -> dict[str, Any]:
        """Show a would-be cycle as a form error (add_dependency re-checks it under the lock on save)."""
        data = super().clean()
        upstream = data.get("upstream_host") or data.get("upstream_service")
        downstream = data.get("downstream_host") or data.get("downstream_service")
        organization = data.get("organization")
        if organization is not None and upstream is not None and downstream is not None:
            message = cycle_error(organization.pk, upstream, downstream)
            if message is not None:
                raise forms.ValidationError(message)
        return data


@admin.register(ServiceDependency)
class ServiceDependencyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_action_prefix = "dependency"
    form = ServiceDependencyForm
    list_display = ["__str__", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["upstream_host__name", "upstream_service__name", "downstream_host__name",
                     "downstream_service__name"]
    list_select_related = ["organization", "upstream_host", "upstream_service__host", "downstream_host",
                           "downstream_service__host"]
    autocomplete_fields = ["organization", "upstream_host", "upstream_service", "downstream_host",
                           "downstream_service"]
    readonly_fields = ["public_id", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Edges are added and removed, never edited; the change page is read-only.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ServiceDependency, form: Any, change: bool) -> None:
        """New edges go through add_dependency (cycle check, lock, audit) instead of a plain save."""
        edge = add_dependency(organization=obj.organization, upstream=obj.upstream, downstream=obj.downstream,
                              actor=request.user)
        obj.pk, obj.public_id, obj.created_at = edge.pk, edge.public_id, edge.created_at
