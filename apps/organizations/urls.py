"""Organization pages under /<org_slug>/."""

from __future__ import annotations

from django.urls import path

from apps.organizations import views

app_name = "organizations"

urlpatterns = [
    path("tokens/", views.token_list, name="tokens"),
]
