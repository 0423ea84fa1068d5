"""Logs under /api/v1/: the native doors (POST) and search (GET) share a path; the bulk API beside them."""

from __future__ import annotations

from django.urls import path

from apps.logs import elastic, views
from apps.logs.api.retention import LogRetentionView

urlpatterns = [
    path("logs", views.logs_endpoint, name="logs"),
    path("logs/_bulk", elastic.bulk, name="logs-bulk"),
    path("logs/retention", LogRetentionView.as_view(), name="logs-retention"),
    path("events", views.events_endpoint, name="events"),
]
