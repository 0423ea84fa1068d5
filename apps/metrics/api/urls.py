"""Metrics under /api/v1/: the native ingest doors (plain Django views, apps/metrics/views.py) and the
read API (DRF, apps/metrics/api/views.py). /api/v1/metrics is both: POST writes, GET reads."""

from __future__ import annotations

from django.urls import path

from apps.metrics import views
from apps.metrics.api.seed_views import LatestValuesView
from apps.metrics.api.views import SeriesListView

urlpatterns = [
    path("write", views.api_write, name="metrics-write"),
    path("prom/write", views.prom_write, name="metrics-prom-write"),
    path("collectd", views.collectd_write, name="metrics-collectd"),
    path("metrics", views.metrics_endpoint, name="metrics"),
    path("metrics/latest", LatestValuesView.as_view(), name="metrics-latest"),
    path("agents/<str:host>/metrics", views.agent_metrics, name="metrics-agent"),
    path("series", SeriesListView.as_view(), name="metrics-series"),
]
