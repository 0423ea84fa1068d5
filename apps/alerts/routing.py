"""Websocket routes of the alerts app; fiberstack/asgi.py collects them."""

from __future__ import annotations

from django.urls import path

from apps.alerts.consumers import AlertsConsumer

websocket_urlpatterns = [
    path("ws/<slug:org_slug>/alerts/", AlertsConsumer.as_asgi()),
]
