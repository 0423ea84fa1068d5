"""Inventory pages under /<org_slug>/hosts/."""

from __future__ import annotations

from django.urls import path

from apps.hosts import views

app_name = "hosts"

urlpatterns = [
    path("", views.host_list, name="list"),
    path("<uuid:public_id>/", views.host_detail, name="detail"),
]
