"""The audit log. Rows are append-only at the database level: a trigger (migration 0002) refuses
UPDATE always and DELETE unless the retention job has set `fiberstack.audit_retention` for its own
transaction."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AuditEventQuerySet(models.QuerySet):
    def for_org(self, organization: models.Model | int) -> AuditEventQuerySet:
        org_id = organization if isinstance(organization, int) else organization.pk
        return self.filter(organization_id=org_id)


class AuditEvent(models.Model):
    """One change, login or token use: who did what to which object, with a before/after diff.

    Foreign keys carry no database constraint and never cascade: the log must outlive the users,
    tokens and organizations it mentions, and a cascade would be a DELETE the trigger refuses."""

    class ActorType(models.TextChoices):
        USER = "user", "User"
        TOKEN = "token", "Agent token"
        SYSTEM = "system", "System"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    organization = models.ForeignKey(
        "organizations.Organization", null=True, blank=True, on_delete=models.DO_NOTHING,
        db_constraint=False, related_name="audit_events",
    )
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    actor_token_id = models.BigIntegerField(null=True, blank=True)
    actor_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The organization's audit page and its CSV/JSON export: newest first within a period.
            models.Index(fields=["organization", "-created_at"], name="audit_org_created_idx"),
            # Filter by object on the audit page ("history of this host").
            models.Index(fields=["organization", "object_type", "object_id"], name="audit_org_object_idx"),
            # The retention job deletes by age across organizations.
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_repr} {self.action} {self.object_repr}"
