"""Wire-compatible ingest paths at the site root, where agents expect them (InfluxDB 1.x/2.x, the
FiberStack probe). The FiberStack-native doors live under /api/v1/ (apps/metrics/api/urls.py)."""

from __future__ import annotations

from django.urls import path

from apps.metrics import views
from apps.metrics.api.seed_views import SeedMetricsView

urlpatterns = [
    path("write", views.influx_write, name="influx-write"),
    path("api/v2/write", views.influx_write, name="influx-v2-write"),
    path("ping", views.ping, name="influx-ping"),
    path("query", views.influx_query, name="influx-query"),
    path("api/push", views.probe_push, name="probe-push"),
    path("api/metrics", SeedMetricsView.as_view(), name="seed-metrics"),
]
