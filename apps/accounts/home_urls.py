"""The site root: sends a signed-in user to their organization."""

from __future__ import annotations

from django.urls import path

from apps.accounts import views

app_name = "accounts_home"

urlpatterns = [path("", views.home, name="home")]

