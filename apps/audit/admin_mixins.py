"""Audit for the Django admin: every add, change and delete made there becomes an AuditEvent with the
before/after diff, in the same transaction as the change (the admin wraps saves in atomic)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from apps.audit.services import record_event, snapshot


def _organization_of(obj: models.Model) -> Any:
    if obj.__class__.__name__ == "Organization":
        return obj
    return getattr(obj, "organization", None)


class AuditedAdminMixin:
    """Mix into a ModelAdmin to audit its writes. `audit_action_prefix` defaults to the model name."""

    audit_action_prefix: str = ""

    def _prefix(self, obj: models.Model) -> str:
        return self.audit_action_prefix or obj._meta.model_name or "object"

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        before = snapshot(obj.__class__._default_manager.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        record_event(
            action=f"{self._prefix(obj)}.{'updated' if change else 'created'}",
            actor=request.user, organization=_organization_of(obj), target=obj,
            before=before, after=snapshot(obj),
        )

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        before = snapshot(obj)
        record_event(action=f"{self._prefix(obj)}.deleted", actor=request.user,
                     organization=_organization_of(obj), target=obj, before=before, after=None)
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        for obj in queryset:
            record_event(action=f"{self._prefix(obj)}.deleted", actor=request.user,
                         organization=_organization_of(obj), target=obj, before=snapshot(obj), after=None)
        super().delete_queryset(request, queryset)  # type: ignore[misc]
