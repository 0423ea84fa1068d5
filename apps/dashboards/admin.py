"""Admin registrations of the dashboards app (each sub-package registers its own)."""

from __future__ import annotations

from apps.dashboards.saved import admin as saved_admin  # noqa: F401  (registers SavedDashboardAdmin)
