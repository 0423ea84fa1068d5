"""The saved dashboard: a named page of chart widgets owned by one organization.

Widgets are stored as one validated JSON list on the dashboard (order = position), not as a Widget model:
a widget has no URL, is never queried alone and is always read and written with its page, and a
dashboard managed as code is replaced as one document. One row keeps every edit (add, remove, reorder)
a single atomic, audited write with a before/after diff of the whole layout."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from apps.core.models import OrgOwnedModel
from apps.dashboards.saved.widgets import clean_widgets


class SavedDashboard(OrgOwnedModel):
    """A page of chart widgets (``widgets``: see apps.dashboards.saved.widgets.WidgetForm), shared by URL."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    widgets = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name",
                                    violation_error_message="A dashboard with this name already exists."),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.widgets = clean_widgets(self.widgets)
        except ValidationError as exc:
            raise ValidationError({"widgets": exc.messages}) from exc

    def validate_constraints(self, exclude: Any = None) -> None:
        """The only constraint is the unique name: report it on ``name`` so forms and the API show it there."""
        try:
            super().validate_constraints(exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict({})
            if NON_FIELD_ERRORS in errors:
                errors.setdefault("name", []).extend(errors.pop(NON_FIELD_ERRORS))
            raise ValidationError(errors) from exc

    def snapshot(self) -> dict[str, Any]:
        """What the audit diff compares."""
        return {"name": self.name, "description": self.description, "widgets": self.widgets}
