"""Abstract model bases. Every tenant-owned row derives from OrgOwnedModel so that scoping by
organization is one method (`for_org`) that every view and viewset calls."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models


class TimeStampedModel(models.Model):
    """Creation and modification times on every row (NetBox ChangeLoggingMixin, Sentry DefaultFieldsModel)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class OrgQuerySet(models.QuerySet):
    """QuerySet with the one tenant filter every read goes through."""

    def for_org(self, organization: models.Model | int) -> OrgQuerySet:
        org_id = organization if isinstance(organization, int) else organization.pk
        return self.filter(organization_id=org_id)


class OrgOwnedModel(TimeStampedModel):
    """A row that belongs to exactly one organization and is addressed by a public UUID, never its pk."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="%(class)ss"
    )
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    objects: Any = OrgQuerySet.as_manager()

    class Meta:
        abstract = True
