"""/api/v1/dashboards (with or without a trailing slash)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.dashboards.saved.api.views import SavedDashboardViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # see apps/hosts/api/urls.py
router.register("dashboards", SavedDashboardViewSet, basename="dashboard")

urlpatterns = router.urls
