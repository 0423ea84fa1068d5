from __future__ import annotations

from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    """Tenants, their members and roles, and agent tokens."""

    name = "apps.organizations"
    label = "organizations"
