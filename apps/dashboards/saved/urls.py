"""/<org_slug>/dashboards/…: saved dashboards (included by apps/dashboards/urls.py)."""

from __future__ import annotations

from django.urls import path

from apps.dashboards.saved import views

app_name = "saved"

urlpatterns = [
    path("", views.dashboard_list, name="list"),
    path("new/", views.dashboard_create, name="create"),
    path("<uuid:public_id>/", views.dashboard_detail, name="detail"),
    path("<uuid:public_id>/edit/", views.dashboard_edit, name="edit"),
    path("<uuid:public_id>/delete/", views.dashboard_delete, name="delete"),
]
