"""Models of the dashboards app (re-exported from their sub-packages)."""

from __future__ import annotations

from apps.dashboards.saved.models import SavedDashboard

__all__ = ["SavedDashboard"]
