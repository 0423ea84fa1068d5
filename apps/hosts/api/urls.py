"""URL routes (filled in by the app)."""

from __future__ import annotations

urlpatterns: list = []
