"""On-call pages under /<org_slug>/oncall/: the calendar of every schedule, overrides and policies."""

from __future__ import annotations

from django.urls import path

from apps.escalation import views

app_name = "escalation"

urlpatterns = [
    path("", views.oncall, name="oncall"),
    path("overrides/new", views.override_create, name="override-create"),
    path("overrides/<uuid:public_id>/delete", views.override_delete, name="override-delete"),
]
