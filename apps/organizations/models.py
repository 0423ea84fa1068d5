"""Tenants (Organization), who belongs to them (Membership) and how agents authenticate (AgentToken)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from apps.core.models import OrgOwnedModel, TimeStampedModel
from apps.core.roles import Role
from apps.core.scopes import TokenScope, scope_allows


class Organization(TimeStampedModel):
    """A tenant. Every tenant-owned row points here; plans bound what retention an org may choose."""

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        TEAM = "team", "Team"
        ENTERPRISE = "enterprise", "Enterprise"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    is_active = models.BooleanField(default=True)
    # Retention overrides in days; null means the product default for that tier (see metrics.retention).
    retention_raw_days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    retention_1m_days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    retention_5m_days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    retention_1h_days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    retention_1d_days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    # When off, pushes for unknown hosts are refused with a 4xx naming them instead of registering them.
    auto_register_hosts = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    """A user's role in one organization."""

    Role = Role

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="%(app_label)s_%(class)s_unique_org_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class AgentTokenQuerySet(models.QuerySet):
    def for_org(self, organization: Organization | int) -> AgentTokenQuerySet:
        org_id = organization if isinstance(organization, int) else organization.pk
        return self.filter(organization_id=org_id)

    def usable(self, now: timezone.datetime | None = None) -> AgentTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AgentToken(OrgOwnedModel):
    """A bearer token for agents and automation. Only a lookup prefix and an HMAC-SHA256 of the whole
    token (keyed with the server-side pepper) are stored; the token itself is shown once. The scope says
    what the token may do (apps/core/scopes.py) and is fixed at issue."""

    Scope = TokenScope

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.INGEST)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent_tokens"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AgentTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def clean(self) -> None:
        # A new token that has already expired could never be used: refused wherever tokens are issued
        # (the service calls this; the admin's form does too). An existing token may be set to expire now.
        if self._state.adding and self.is_expired():
            raise ValidationError({"expires_at": "A new token's expiry must be in the future."})

    def audit_actor(self) -> str:
        """How the audit log names this token as an actor."""
        return f"token {self.name} ({self.prefix})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: timezone.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def allows(self, required: str) -> bool:
        """True when this token's scope grants `required` (a TokenScope)."""
        return scope_allows(self.scope, required)

    def allows_ingest(self) -> bool:
        """The ingest doors accept only ingest tokens (``write`` is the scope's former name)."""
        return self.allows(TokenScope.INGEST)

    #: The ingest doors' name for `allows_ingest` from when the scope was called ``write``.
    allows_write = allows_ingest
