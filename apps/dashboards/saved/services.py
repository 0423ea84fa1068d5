"""Writes of saved dashboards. Each validates the whole dashboard (widgets included) and records an audit
event in the same transaction, whichever door it came through (pages, API, admin)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit.services import record_event
from apps.dashboards.saved.models import SavedDashboard

EDITABLE_FIELDS: tuple[str, ...] = ("name", "description", "widgets")


@transaction.atomic
def create_dashboard(*, organization: Any, actor: Any, name: str, description: str = "",
                     widgets: list[dict[str, Any]] | None = None) -> SavedDashboard:
    """A new dashboard; ValidationError (by field) for a bad widget or a name already taken."""
    dashboard = SavedDashboard(organization=organization, name=name.strip(), description=description,
                               widgets=list(widgets or []))
    dashboard.full_clean()
    dashboard.save()
    record_event(action="dashboard.created", actor=actor, organization=organization, target=dashboard,
                 after=dashboard.snapshot())
    return dashboard


@transaction.atomic
def update_dashboard(*, dashboard: SavedDashboard, actor: Any, **changes: Any) -> SavedDashboard:
    """Change name, description and/or the widget list (adding, removing and reordering widgets all
    replace the list). The row is locked so two editors' saves apply one after the other."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    locked = SavedDashboard.objects.select_for_update().get(pk=dashboard.pk)
    before = locked.snapshot()
    for field, value in changes.items():
        setattr(locked, field, value.strip() if field == "name" else value)
    locked.full_clean()
    locked.save()
    record_event(action="dashboard.updated", actor=actor, organization=locked.organization_id, target=locked,
                 before=before, after=locked.snapshot())
    return locked


@transaction.atomic
def delete_dashboard(*, dashboard: SavedDashboard, actor: Any) -> None:
    """Remove a dashboard; its shared links answer 404 from then on."""
    record_event(action="dashboard.deleted", actor=actor, organization=dashboard.organization_id,
                 target=dashboard, before=dashboard.snapshot())
    dashboard.delete()
