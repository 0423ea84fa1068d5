"""Websocket routes of the metrics app; fiberstack/asgi.py collects them."""

from __future__ import annotations

from django.urls import path

from apps.metrics.consumers import DashboardNamesConsumer, HostPointsConsumer

websocket_urlpatterns = [
    path("ws/<slug:org_slug>/hosts/<uuid:host_id>/points/", HostPointsConsumer.as_asgi()),
    path("ws/<slug:org_slug>/dashboards/live/", DashboardNamesConsumer.as_asgi()),
]
