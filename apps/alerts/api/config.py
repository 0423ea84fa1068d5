"""Placeholder: filled by the config work."""

from __future__ import annotations

urlpatterns: list = []
