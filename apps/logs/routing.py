"""Websocket routes of the logs app; fiberstack/asgi.py collects them."""

from __future__ import annotations

from django.urls import path

from apps.logs.consumers import LogTailConsumer

websocket_urlpatterns = [path("ws/<slug:org_slug>/logs/", LogTailConsumer.as_asgi())]
