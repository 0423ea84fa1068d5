"""Websocket routes of the hosts app; fiberstack/asgi.py collects them."""

from __future__ import annotations

from django.urls import path

from apps.hosts.consumers import HostsConsumer

websocket_urlpatterns = [
    path("ws/<slug:org_slug>/hosts/", HostsConsumer.as_asgi()),
]
