"""Dashboard pages under /<org_slug>/: the overview (the organization's landing page) and its live status."""

from __future__ import annotations

from django.urls import include, path

from apps.dashboards import views

app_name = "dashboards"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("overview/status.json", views.overview_status, name="overview-status"),
    path("dashboards/", include("apps.dashboards.saved.urls")),
]
