"""Serializers for hosts, services and dependencies. References between objects are public ids resolved
inside the caller's organization only, so a foreign id is a 400 naming the field, never a link."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from apps.core.api.fields import CurrentOrganizationDefault
from apps.hosts.models import Host, Service, ServiceDependency
from apps.hosts.validators import validate_country


class OrgScopedRelatedField(serializers.SlugRelatedField):
    """A related object named by its public_id and looked up only in request.organization."""

    default_error_messages = {
        "does_not_exist": "No such object in this organization: {value}.",
        "invalid": "Expected the object's id (a UUID).",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "public_id")
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return super().get_queryset().for_org(self.context["request"].organization)

    def to_internal_value(self, data: Any) -> Any:
        try:
            uuid.UUID(str(data))
        except ValueError:
            self.fail("invalid")
        return super().to_internal_value(data)


class ServiceSummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Service
        fields = ["id", "name", "kind", "health_check_url"]


class HostSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.HiddenField(default=CurrentOrganizationDefault())
    country = serializers.CharField(max_length=3, allow_blank=True, required=False)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Host
        fields = ["id", "organization", "name", "display_name", "environment", "datacenter", "country", "region",
                  "city", "latitude", "longitude", "tags", "hardware_info", "agent_version", "is_active", "status",
                  "last_seen_at", "created_at", "updated_at"]
        read_only_fields = ["last_seen_at", "created_at", "updated_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        """On update the organization is not an input at all (a host never changes organization)."""
        fields = super().get_fields()
        if self.instance is not None:
            fields.pop("organization")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "organization" in getattr(self, "initial_data", {}):
            raise serializers.ValidationError(
                {"organization": "A host's organization cannot be changed after creation."})
        return attrs

    def validate_country(self, value: str) -> str:
        value = value.strip().upper()
        try:
            validate_country(value)
        except Exception as exc:  # Django's ValidationError → DRF's, keeping the message
            raise serializers.ValidationError(getattr(exc, "messages", [str(exc)])) from exc
        return value

    def get_status(self, obj: Host) -> str:
        annotated = getattr(obj, "current_status", None)
        return annotated or obj.status(self.context.get("now") or timezone.now())


class HostDetailSerializer(HostSerializer):
    services = ServiceSummarySerializer(many=True, read_only=True)

    class Meta(HostSerializer.Meta):
        fields = [*HostSerializer.Meta.fields, "services"]


class ServiceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.HiddenField(default=CurrentOrganizationDefault())
    host = OrgScopedRelatedField(queryset=Host.objects.all())
    host_name = serializers.CharField(source="host.name", read_only=True)

    class Meta:
        model = Service
        fields = ["id", "organization", "host", "host_name", "name", "kind", "health_check_url", "description",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


def _node(obj: Host | Service | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    kind = "host" if isinstance(obj, Host) else "service"
    return {"type": kind, "id": str(obj.public_id), "name": obj.name}


class ServiceDependencySerializer(serializers.ModelSerializer):
    """Set one of upstream_host/upstream_service and one of downstream_host/downstream_service."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.HiddenField(default=CurrentOrganizationDefault())
    upstream_host = OrgScopedRelatedField(queryset=Host.objects.all(), required=False, allow_null=True)
    upstream_service = OrgScopedRelatedField(queryset=Service.objects.all(), required=False, allow_null=True)
    downstream_host = OrgScopedRelatedField(queryset=Host.objects.all(), required=False, allow_null=True)
    downstream_service = OrgScopedRelatedField(queryset=Service.objects.all(), required=False, allow_null=True)
    upstream = serializers.SerializerMethodField()
    downstream = serializers.SerializerMethodField()

    class Meta:
        model = ServiceDependency
        fields = ["id", "organization", "upstream_host", "upstream_service", "downstream_host", "downstream_service",
                  "upstream", "downstream", "created_at"]
        read_only_fields = ["created_at"]
        # Duplicates are checked by the service (the unique edge has NULL halves DRF's validator cannot express).
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for side in ("upstream", "downstream"):
            chosen = [f"{side}_{kind}" for kind in ("host", "service") if attrs.get(f"{side}_{kind}") is not None]
            if len(chosen) != 1:
                message = f"Set exactly one of {side}_host and {side}_service."
                raise serializers.ValidationError({f"{side}_host": message, f"{side}_service": message})
        return attrs

    def get_upstream(self, obj: ServiceDependency) -> dict[str, Any] | None:
        return _node(obj.upstream)

    def get_downstream(self, obj: ServiceDependency) -> dict[str, Any] | None:
        return _node(obj.downstream)
