"""Placeholder: filled by the alerts work."""

from __future__ import annotations

urlpatterns: list = []
