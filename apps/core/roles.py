"""Organization roles and their order. Lives in core because the API permission classes rank roles;
`organizations.Membership.role` uses these choices."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


ROLE_RANK: dict[str, int] = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_at_least(role: str | None, minimum: str) -> bool:
    """True when `role` grants everything `minimum` grants."""
    if role is None:
        return False
    return ROLE_RANK[role] >= ROLE_RANK[minimum]
