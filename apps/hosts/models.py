"""Inventory: hosts (what agents report as), the services running on them, and the directed dependency
graph between hosts and services that alerting uses to inhibit dependents of a failing upstream."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, Func, Q, Value, When
from django.db.models.lookups import Exact
from django.utils import timezone

from apps.core.models import OrgOwnedModel, OrgQuerySet
from apps.hosts.validators import validate_country, validate_health_check_target, validate_tags

if TYPE_CHECKING:
    from apps.organizations.models import Organization

DEFAULT_STALE_AFTER_SECONDS = 300


def stale_after(organization: Organization | int | None = None) -> datetime.timedelta:
    """How long a host may stay silent before it counts as down. One place, so that a per-organization
    override (a column on Organization) later changes this function only."""
    seconds = getattr(settings, "FIBERSTACK_HOST_STALE_AFTER_SECONDS", DEFAULT_STALE_AFTER_SECONDS)
    return datetime.timedelta(seconds=seconds)


class HostStatus(models.TextChoices):
    """Derived from last_seen_at at read time, never stored: a stored status would need a writer to flip it."""

    UP = "up", "Up"
    DOWN = "down", "Down"
    UNKNOWN = "unknown", "Unknown"


class NaturalSortKey(Func):
    """A text sort key that orders embedded numbers by value: every run of digits is left-padded with zeros
    to 40 characters, so "host_2" sorts before "host_10" and "rack2-node9" before "rack2-node10". Plain
    SQL (regexp_matches, lpad), no ICU collation, so it behaves the same on every PostgreSQL build."""

    template = (
        "array_to_string(ARRAY(SELECT CASE WHEN m[1] ~ '^[0-9]' THEN lpad(m[1], greatest(40, length(m[1])), '0') "
        "ELSE m[1] END FROM regexp_matches(%(expressions)s, '([0-9]+|[^0-9]+)', 'g') AS m), '')"
    )
    output_field = models.TextField()


class HostQuerySet(OrgQuerySet):
    def natural_order(self) -> HostQuerySet:
        """Ordered by name the way people read it (host_2 before host_10); ties (host_02, host_2) by name."""
        return self.order_by(NaturalSortKey("name"), "name", "id")

    def with_status(self, now: datetime.datetime | None = None) -> HostQuerySet:
        """Annotate `current_status` (up/down/unknown) as Host.status(now) would compute it."""
        now = now or timezone.now()
        return self.annotate(
            current_status=Case(
                When(last_seen_at__isnull=True, then=Value(HostStatus.UNKNOWN)),
                When(last_seen_at__lt=now - stale_after(), then=Value(HostStatus.DOWN)),
                default=Value(HostStatus.UP),
                output_field=models.CharField(max_length=8),
            )
        )

    def filter_status(self, status: str, now: datetime.datetime | None = None) -> HostQuerySet:
        """Hosts whose derived status is `status`, written as range conditions so the
        (organization, last_seen_at) index applies (a filter on the CASE annotation could not use it)."""
        cutoff = (now or timezone.now()) - stale_after()
        if status == HostStatus.UNKNOWN:
            return self.filter(last_seen_at__isnull=True)
        if status == HostStatus.DOWN:
            return self.filter(last_seen_at__lt=cutoff)
        if status == HostStatus.UP:
            return self.filter(last_seen_at__gte=cutoff)
        return self.none()


class Host(OrgOwnedModel):
    """A machine or probe node that pushes data. `name` is the host label agents send and is how ingest
    finds the host; everything else is inventory that admins or the agent's metadata fill in."""

    Status = HostStatus

    name = models.CharField(max_length=200, help_text="The host label agents send; unique in the organization.")
    display_name = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=64, blank=True, help_text="e.g. production, staging")
    datacenter = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, validators=[validate_country],
                               help_text="ISO 3166-1 alpha-2 code, e.g. DE")
    region = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField(null=True, blank=True,
                                 validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)])
    longitude = models.FloatField(null=True, blank=True,
                                  validators=[MinValueValidator(-180.0), MaxValueValidator(180.0)])
    tags = models.JSONField(default=dict, blank=True, validators=[validate_tags])
    hardware_info = models.JSONField(default=dict, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = HostQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name",
                                    violation_error_message="This organization already has a host with this name."),
            models.CheckConstraint(condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                                   name="%(app_label)s_%(class)s_latitude_range"),
            models.CheckConstraint(condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                                   name="%(app_label)s_%(class)s_longitude_range"),
            models.CheckConstraint(
                condition=Exact(Func(F("tags"), function="jsonb_typeof", output_field=models.CharField()), "object"),
                name="%(app_label)s_%(class)s_tags_object",
                violation_error_message="Tags must be a JSON object.",
            ),
        ]
        indexes = [
            # Status filters on the host list/API and the heartbeat sweep: last_seen_at ranges per organization.
            models.Index(fields=["organization", "last_seen_at"], name="hosts_host_org_seen_idx"),
            # `tag=key:value` filters compile to `tags @> {"key": "value"}`, which jsonb_path_ops serves.
            GinIndex(fields=["tags"], opclasses=["jsonb_path_ops"], name="hosts_host_tags_gin"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        # Field validators skip "empty" values, and [] is one; the CHECK constraint would catch it as a
        # non-field error, so name the field here instead.
        if not isinstance(self.tags, dict):
            raise ValidationError({"tags": "Tags must be a JSON object of string keys to string values."})

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def is_stale(self, now: datetime.datetime | None = None) -> bool:
        """Seen before, but not within the staleness threshold."""
        now = now or timezone.now()
        return self.last_seen_at is not None and self.last_seen_at < now - stale_after(self.organization_id)

    def status(self, now: datetime.datetime | None = None) -> str:
        """unknown (never seen), down (silent longer than the threshold) or up."""
        if self.last_seen_at is None:
            return HostStatus.UNKNOWN
        return HostStatus.DOWN if self.is_stale(now) else HostStatus.UP


class Service(OrgOwnedModel):
    """Something that runs on a host (a web app, a database, a queue) and can be health-checked."""

    class Kind(models.TextChoices):
        HTTP = "http", "HTTP"
        TCP = "tcp", "TCP"
        DATABASE = "database", "Database"
        QUEUE = "queue", "Queue"
        CACHE = "cache", "Cache"
        DNS = "dns", "DNS"
        OTHER = "other", "Other"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    health_check_url = models.CharField(max_length=500, blank=True, validators=[validate_health_check_target],
                                        help_text="A URL (http, https, tcp, …) or host:port")
    description = models.TextField(blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["host", "name"], name="%(app_label)s_%(class)s_unique_host_name",
                                    violation_error_message="This host already has a service with this name."),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}" if self.host_id else self.name

    def clean(self) -> None:
        super().clean()
        if self.host_id and self.organization_id and self.host.organization_id != self.organization_id:
            raise ValidationError({"host": "The host belongs to another organization."})


class NodeRef(NamedTuple):
    """A vertex of the dependency graph: ("host", pk) or ("service", pk)."""

    kind: str
    id: int

    @classmethod
    def of(cls, obj: Host | Service) -> NodeRef:
        return cls("host" if isinstance(obj, Host) else "service", obj.pk)


class ServiceDependency(OrgOwnedModel):
    """A directed edge "downstream depends on upstream" between two nodes, each a host or a service.
    When an upstream node fails, alerts on its downstream closure are inhibited rather than paged.

    Acyclicity cannot be a constraint; `services.add_dependency` checks it under a per-organization lock."""

    upstream_host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="downstream_dependencies")
    upstream_service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE,
                                         related_name="downstream_dependencies")
    downstream_host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.CASCADE,
                                        related_name="upstream_dependencies")
    downstream_service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE,
                                           related_name="upstream_dependencies")

    objects = OrgQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "service dependencies"
        constraints = [
            models.CheckConstraint(
                condition=(Q(upstream_host__isnull=False, upstream_service__isnull=True)
                           | Q(upstream_host__isnull=True, upstream_service__isnull=False)),
                name="%(app_label)s_%(class)s_one_upstream",
                violation_error_message="Set exactly one of upstream host and upstream service.",
            ),
            models.CheckConstraint(
                condition=(Q(downstream_host__isnull=False, downstream_service__isnull=True)
                           | Q(downstream_host__isnull=True, downstream_service__isnull=False)),
                name="%(app_label)s_%(class)s_one_downstream",
                violation_error_message="Set exactly one of downstream host and downstream service.",
            ),
            models.CheckConstraint(
                condition=~Q(upstream_host=F("downstream_host")) & ~Q(upstream_service=F("downstream_service")),
                name="%(app_label)s_%(class)s_no_self_loop",
                violation_error_message="A node cannot depend on itself.",
            ),
            # NULLS NOT DISTINCT (PostgreSQL 15+): the unused half of each pair is NULL and must still compare.
            models.UniqueConstraint(
                fields=["upstream_host", "upstream_service", "downstream_host", "downstream_service"],
                nulls_distinct=False, name="%(app_label)s_%(class)s_unique_edge",
                violation_error_message="This dependency already exists.",
            ),
        ]
        # The closure walks join on downstream_* / upstream_* and use the per-column FK indexes Django creates.

    def __str__(self) -> str:
        return f"{self.downstream} depends on {self.upstream}"

    @property
    def upstream(self) -> Host | Service | None:
        return self.upstream_host if self.upstream_host_id else self.upstream_service

    @property
    def downstream(self) -> Host | Service | None:
        return self.downstream_host if self.downstream_host_id else self.downstream_service

    @property
    def upstream_ref(self) -> NodeRef:
        if self.upstream_host_id:
            return NodeRef("host", self.upstream_host_id)
        return NodeRef("service", self.upstream_service_id)  # type: ignore[arg-type]

    @property
    def downstream_ref(self) -> NodeRef:
        if self.downstream_host_id:
            return NodeRef("host", self.downstream_host_id)
        return NodeRef("service", self.downstream_service_id)  # type: ignore[arg-type]

    def clean(self) -> None:
        super().clean()
        for field in ("upstream_host", "upstream_service", "downstream_host", "downstream_service"):
            node: Any = getattr(self, field) if getattr(self, f"{field}_id") else None
            if node is not None and self.organization_id and node.organization_id != self.organization_id:
                raise ValidationError({field: "This belongs to another organization."})
