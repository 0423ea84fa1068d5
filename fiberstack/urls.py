"""Root URLconf. Pages live under /<org_slug>/…, the agent and config API under /api/v1/…, and the
wire-compatible ingest doors (InfluxDB, Prometheus, collectd, probe) at the paths agents expect."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from apps.core import views as core_views
from apps.metrics.admin_storage import storage_page

api_v1 = [
    path("", include("apps.organizations.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.hosts.api.urls")),
    path("", include("apps.metrics.api.urls")),
    path("", include("apps.logs.api.urls")),
    path("", include("apps.alerts.api.urls")),
    path("", include("apps.escalation.api.urls")),
    path("", include("apps.dashboards.saved.api.urls")),
]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/storage/", admin.site.admin_view(storage_page), name="admin-storage"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("", include("apps.metrics.compat_urls")),
    path("", include("apps.logs.compat_urls")),  # before the home page: "/" answers shippers too
    path("accounts/", include("apps.accounts.urls")),
    path("", include("apps.accounts.home_urls")),
    path("<slug:org_slug>/", include("apps.dashboards.urls")),
    path("<slug:org_slug>/", include("apps.organizations.urls")),
    path("<slug:org_slug>/audit/", include("apps.audit.urls")),
    path("<slug:org_slug>/hosts/", include("apps.hosts.urls")),
    path("<slug:org_slug>/logs/", include("apps.logs.urls")),
    path("<slug:org_slug>/oncall/", include("apps.escalation.urls")),
    path("<slug:org_slug>/", include("apps.alerts.urls")),  # alerts/ rules/ channels/ silences/
]
