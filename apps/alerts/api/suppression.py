"""``/api/v1/silences`` and ``/api/v1/maintenance-windows``: organization-scoped, writes through
apps.alerts.services.suppression (validated, audited). Editors silence, expire and plan maintenance --
on-call work, not administration; viewers and read tokens read; config tokens write.

Silences are never edited or deleted: ``DELETE /api/v1/silences/{id}`` expires one (204) and it stays
listed with ``state=expired``. Hosts of a maintenance window are given by id or name, services by id;
an id of another organization is a 400 naming the field."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.alerts.models import MaintenanceWindow, Silence
from apps.alerts.services import suppression as services
from apps.alerts.suppression import next_occurrences, occurrence_covering, silence_state, zone
from apps.core.api.actors import request_actor
from apps.core.api.fields import is_uuid
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, DEFAULT_REQUIRED_ROLES, OrgScopedViewSet
from apps.core.roles import Role
from apps.hosts.models import Host, Service

REQUIRED_ROLES = {**DEFAULT_REQUIRED_ROLES, "destroy": Role.EDITOR}
SILENCE_STATES = ("active", "pending", "expired")
NEXT_OCCURRENCES = 5



def _end(attrs: dict[str, Any], start: dt.datetime) -> dt.timedelta | None:
    """The length given as ``duration`` (seconds) or ``ends_at``; both at once is ambiguous."""
    if "duration" in attrs and "ends_at" in attrs:
        raise serializers.ValidationError({"duration": "give duration or ends_at, not both"})
    if "duration" in attrs:
        return dt.timedelta(seconds=attrs.pop("duration"))
    if "ends_at" in attrs:
        ends_at = attrs.pop("ends_at")
        if ends_at <= start:
            raise serializers.ValidationError({"ends_at": "ends_at must be after starts_at"})
        return ends_at - start
    return None


# --- silences --------------------------------------------------------------------------------------


class SilenceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    matchers = serializers.JSONField(help_text='[{"name", "op", "value"}] or a matcher string')
    starts_at = serializers.DateTimeField(required=False, help_text="default: now")
    ends_at = serializers.DateTimeField(required=False)
    duration = serializers.IntegerField(min_value=1, required=False, write_only=True, help_text="seconds")
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    created_by = serializers.CharField(source="created_by_repr", read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = ["id", "matchers", "starts_at", "ends_at", "duration", "comment", "state", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("starts_at", timezone.now())
        length = _end(attrs, attrs["starts_at"])
        if length is None:
            raise serializers.ValidationError({"ends_at": "give ends_at or duration (seconds)"})
        attrs["ends_at"] = attrs["starts_at"] + length
        return attrs

    def get_state(self, obj: Silence) -> str:
        return silence_state(obj, timezone.now())


class SilenceViewSet(OrgScopedViewSet):
    """Silences; ``?state=active|pending|expired``. DELETE expires."""

    queryset = Silence.objects.all()
    serializer_class = SilenceSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    required_roles = REQUIRED_ROLES
    required_scopes = CONFIG_REQUIRED_SCOPES

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        state = self.request.query_params.get("state")
        if self.action != "list" or not state:
            return queryset
        if state not in SILENCE_STATES:
            raise serializers.ValidationError({"state": f"state must be one of {', '.join(SILENCE_STATES)}"})
        now = timezone.now()
        return {"active": queryset.filter(starts_at__lte=now, ends_at__gt=now),
                "pending": queryset.filter(starts_at__gt=now),
                "expired": queryset.filter(ends_at__lte=now)}[state]

    def perform_create(self, serializer: SilenceSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_silence(
            organization=self.request.organization, actor=request_actor(self.request), matchers=data["matchers"],
            starts_at=data["starts_at"], ends_at=data["ends_at"], comment=data.get("comment", ""))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.expire_silence(silence=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- maintenance windows ---------------------------------------------------------------------------



class MaintenanceWindowSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    duration = serializers.IntegerField(source="duration_seconds", min_value=1, required=False, help_text="seconds")
    ends_at = serializers.DateTimeField(required=False, write_only=True, help_text="end of the first occurrence")
    time_zone = serializers.CharField(max_length=64, required=False, default="UTC")
    hosts = serializers.ListField(child=serializers.CharField(), required=False, write_only=True,
                                  help_text="host ids or names")
    services = serializers.ListField(child=serializers.CharField(), required=False, write_only=True,
                                     help_text="service ids")
    host_tags = serializers.JSONField(required=False)
    created_by = serializers.CharField(source="created_by_repr", read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "name", "starts_at", "duration", "ends_at", "rrule", "time_zone", "until", "hosts",
                  "host_tags", "services", "comment", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def _organization(self) -> Any:
        return self.context["request"].organization

    def validate_hosts(self, values: list[str]) -> list[Host]:
        """Ids (UUIDs) or names, looked up in the caller's organization only."""
        ids = {uuid.UUID(v) for v in values if is_uuid(v)}
        names = {v for v in values if not is_uuid(v)}
        hosts = Host.objects.for_org(self._organization())
        found = list(hosts.filter(public_id__in=ids)) + list(hosts.filter(name__in=names))
        missing = (ids - {h.public_id for h in found}) | (names - {h.name for h in found})
        if missing:
            raise serializers.ValidationError(f"no such host in this organization: "
                                              f"{', '.join(sorted(map(str, missing))[:10])}")
        return list({h.pk: h for h in found}.values())

    def validate_services(self, values: list[str]) -> list[Service]:
        bad = [v for v in values if not is_uuid(v)]
        if bad:
            raise serializers.ValidationError(f"expected service ids (UUIDs), not {', '.join(bad[:10])}")
        found = list(Service.objects.for_org(self._organization()).filter(public_id__in=values))
        known = {str(s.public_id) for s in found}
        missing = [v for v in values if str(uuid.UUID(v)) not in known]
        if missing:
            raise serializers.ValidationError(f"no such service in this organization: {', '.join(missing[:10])}")
        return found

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None and "starts_at" not in attrs:
            raise serializers.ValidationError({"starts_at": "This field is required."})
        self._local_times(attrs)
        start = attrs.get("starts_at") or self.instance.starts_at  # type: ignore[union-attr]
        if "duration_seconds" in attrs:
            attrs["duration"] = attrs.pop("duration_seconds")
        length = _end(attrs, start)
        if length is not None:
            if length.total_seconds() != int(length.total_seconds()):
                raise serializers.ValidationError({"ends_at": "the window must last whole seconds"})
            attrs["duration_seconds"] = int(length.total_seconds())
        elif self.instance is None:
            raise serializers.ValidationError({"duration": "give duration (seconds) or ends_at"})
        return attrs

    def _local_times(self, attrs: dict[str, Any]) -> None:
        """``starts_at`` / ``until`` given without a UTC offset are wall times in the window's time zone
        ("2026-03-01T02:30" with Europe/Berlin), which is how people plan maintenance."""
        name = attrs.get("time_zone") or getattr(self.instance, "time_zone", None) or "UTC"
        for field in ("starts_at", "until"):
            raw = self.initial_data.get(field) if isinstance(self.initial_data, dict) else None
            if attrs.get(field) is None or not isinstance(raw, str) or not _is_naive(raw):
                continue
            attrs[field] = attrs[field].replace(tzinfo=None).replace(tzinfo=zone(name)).astimezone(dt.UTC)

    def to_representation(self, instance: MaintenanceWindow) -> dict[str, Any]:
        data = super().to_representation(instance)
        now = self.context.get("now") or timezone.now()
        data["hosts"] = [{"id": str(h.public_id), "name": h.name} for h in instance.hosts.all()]
        data["services"] = [{"id": str(s.public_id), "name": s.name, "host": s.host.name}
                            for s in instance.services.all()]
        data["ends_at"] = _iso(instance.starts_at + dt.timedelta(seconds=instance.duration_seconds))
        current = occurrence_covering(instance, now)
        data["in_progress"] = current is not None
        data["current_occurrence"] = {"starts_at": _iso(current[0]), "ends_at": _iso(current[1])} if current else None
        data["next_occurrences"] = [{"starts_at": _iso(s), "ends_at": _iso(e)}
                                    for s, e in next_occurrences(instance, now, NEXT_OCCURRENCES)]
        return data


def _is_naive(text: str) -> bool:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is None
    except ValueError:
        return False


def _iso(moment: dt.datetime) -> str:
    return serializers.DateTimeField().to_representation(moment)


class MaintenanceWindowViewSet(OrgScopedViewSet):
    """Maintenance windows with their current and next occurrences."""

    queryset = MaintenanceWindow.objects.prefetch_related("hosts", "services__host")
    serializer_class = MaintenanceWindowSerializer
    required_roles = REQUIRED_ROLES
    required_scopes = CONFIG_REQUIRED_SCOPES

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def perform_create(self, serializer: MaintenanceWindowSerializer) -> None:
        serializer.instance = services.create_maintenance_window(
            organization=self.request.organization, actor=request_actor(self.request), **serializer.validated_data)

    def perform_update(self, serializer: MaintenanceWindowSerializer) -> None:
        serializer.instance = services.update_maintenance_window(
            window=serializer.instance, actor=request_actor(self.request), **serializer.validated_data)

    def perform_destroy(self, instance: MaintenanceWindow) -> None:
        services.delete_maintenance_window(window=instance, actor=request_actor(self.request))


router = SimpleRouter()
router.trailing_slash = "/?"
router.register("silences", SilenceViewSet, basename="silence")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="maintenance-window")

urlpatterns = router.urls
