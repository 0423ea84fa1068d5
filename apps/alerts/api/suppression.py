"""Placeholder: filled by the suppression work."""

from __future__ import annotations

urlpatterns: list = []
