"""Who is signed in where: one row per authenticated Django session, so a user can see and end them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class UserSessionQuerySet(models.QuerySet):
    def active(self) -> UserSessionQuerySet:
        """Sessions whose Django session row has not expired (expired rows linger until clearsessions)."""
        return self.filter(session__expire_date__gt=timezone.now())


class UserSession(models.Model):
    """Metadata for one signed-in Django session (database backend): where it came from and when it was
    last used. The row dies with its session row (logout, revocation, clearsessions), and is addressed
    by `public_id` because the session key is the cookie secret and must never reach a page."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.OneToOneField(
        "sessions.Session", on_delete=models.CASCADE, related_name="user_session", db_column="session_key"
    )
    # The security page lists one user's sessions; the FK index serves it.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="user_sessions")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    objects = UserSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.user} from {self.ip or 'unknown'} ({self.user_agent[:40]})"
