"""Logs pages under /<org_slug>/logs/."""

from __future__ import annotations

from django.urls import path

from apps.logs import pages

app_name = "logs"

urlpatterns = [path("", pages.log_search, name="search")]
