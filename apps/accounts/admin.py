"""Platform admins can see who is signed in where (read-only: sessions end from the user's security
page or by deleting the Django session)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.models import UserSession


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "ip", "user_agent", "created_at", "last_seen_at"]
    search_fields = ["user__username", "ip"]
    list_select_related = ["user"]
    # The session key is the cookie secret: never displayed.
    fields = ["public_id", "user", "ip", "user_agent", "created_at", "last_seen_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
