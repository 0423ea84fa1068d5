"""The audit log pages under /<org_slug>/audit/."""

from __future__ import annotations

from django.urls import path

from apps.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_list, name="list"),
    path("export", views.audit_export, name="export"),
]
