"""Serializers for schedules, their layers and overrides. Members are named by username and resolved
inside the caller's organization only: a username that is not a member is a 400 naming it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.alerts.models import NotificationChannel
from apps.core.api.fields import CurrentOrganizationDefault
from apps.escalation.feeds import feed_path
from apps.escalation.models import CalendarFeed, OnCallSchedule, ScheduleLayer, ScheduleOverride
from apps.escalation.services import LayerData, layer_snapshot
from apps.escalation.validation import (
    check_year,
    format_hhmm,
    normalize_restrictions,
    parse_hhmm,
    validate_time_zone,
)


def _organization(serializer: serializers.Field | serializers.Serializer) -> Any:
    context = serializer.context
    return context.get("organization") or context["request"].organization


def resolve_members(organization: Any, usernames: list[str]) -> dict[str, Any]:
    """username -> user for the given names that are members of ``organization``."""
    users = get_user_model().objects.filter(username__in=usernames, memberships__organization=organization)
    return {user.get_username(): user for user in users}


@extend_schema_field(OpenApiTypes.STR)
class MemberField(serializers.Field):
    """One username of a member of the organization (the user object internally)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not data.strip() or len(data) > 150:
            raise serializers.ValidationError("Expected the username of a member of this organization.")
        username = data.strip()
        user = resolve_members(_organization(self), [username]).get(username)
        if user is None:
            raise serializers.ValidationError(f"Not a member of this organization: {username}.")
        return user

    def to_representation(self, value: Any) -> str:
        return value.get_username()


class MembersField(serializers.ListField):
    """Usernames in rotation order (repeats allowed); every one must be a member of the organization."""

    child = serializers.CharField(max_length=150)

    def to_internal_value(self, data: Any) -> list[Any]:
        usernames = super().to_internal_value(data)
        found = resolve_members(_organization(self), usernames)
        missing = sorted({name for name in usernames if name not in found})
        if missing:
            raise serializers.ValidationError(f"Not members of this organization: {', '.join(missing)}.")
        return [found[name] for name in usernames]


def parse_instant(value: Any) -> dt.datetime:
    """An RFC 3339 date-time with an offset (``Z`` or ``±HH:MM``); ValueError otherwise. A ``+`` sent
    unencoded in a query string arrives as a space and is put back."""
    if not isinstance(value, str):
        raise ValueError("Expected an RFC 3339 date-time such as 2026-03-29T09:00:00+02:00.")
    text = value.strip()
    if "T" in text and " " in text:
        text = text.replace(" ", "+")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"Not an RFC 3339 date-time: {value!r}.") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset: add Z or ±HH:MM (RFC 3339).")
    check_year(parsed)
    return parsed.astimezone(dt.UTC)


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An instant in RFC 3339 with an offset; naive times are refused (whose local time would they be?)."""

    def to_internal_value(self, data: Any) -> dt.datetime:
        try:
            return parse_instant(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: dt.datetime) -> str:
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field(OpenApiTypes.STR)
class HHMMField(serializers.Field):
    def to_internal_value(self, data: Any) -> dt.time:
        try:
            return parse_hhmm(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: dt.time) -> str:
        return format_hhmm(value)


class RestrictionsField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        try:
            return normalize_restrictions(super().to_internal_value(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class LayerSerializer(serializers.Serializer):
    """A layer. ``priority`` defaults to the layer's index in the list (later layers win);
    ``shift_seconds`` is for custom rotations only (at least 900)."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    priority = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True,
                                        default=None)
    rotation = serializers.ChoiceField(choices=ScheduleLayer.Rotation.choices)
    shift_seconds = serializers.IntegerField(min_value=ScheduleLayer.MIN_SHIFT_SECONDS, max_value=2**31 - 1,
                                             required=False, allow_null=True, default=None)
    start_date = serializers.DateField()
    handoff_time = HHMMField()
    members = MembersField(allow_empty=False, max_length=500)
    restrictions = RestrictionsField(required=False, default=list)

    def validate_start_date(self, value: dt.date) -> dt.date:
        try:
            check_year(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        custom = attrs["rotation"] == ScheduleLayer.Rotation.CUSTOM
        if custom and attrs.get("shift_seconds") is None:
            raise serializers.ValidationError({"shift_seconds": "A custom rotation needs shift_seconds."})
        if not custom and attrs.get("shift_seconds") is not None:
            raise serializers.ValidationError({"shift_seconds": "Only custom rotations take shift_seconds."})
        return attrs

    def to_representation(self, instance: ScheduleLayer) -> dict[str, Any]:
        return layer_snapshot(instance)


def layer_data(validated: list[dict[str, Any]]) -> list[LayerData]:
    return [LayerData(**attrs) for attrs in validated]


class ShiftChannelField(serializers.UUIDField):
    """A user-configured notification channel of the caller's organization, by public id."""

    def to_internal_value(self, data: Any) -> Any:
        public_id = super().to_internal_value(data)
        found = NotificationChannel.objects.for_org(_organization(self)).user_configured().filter(
            public_id=public_id).first()
        if found is None:
            raise serializers.ValidationError(f"No such channel in this organization: {public_id}.")
        return found

    def to_representation(self, value: Any) -> str:
        return str(value.public_id)


class ScheduleSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.HiddenField(default=CurrentOrganizationDefault())
    time_zone = serializers.CharField(max_length=64)
    layers = LayerSerializer(many=True, required=False)
    notify_shift_changes = serializers.BooleanField(required=False,
                                                    help_text="post 'X is now on call' to shift_change_channel")
    shift_change_channel = ShiftChannelField(required=False, allow_null=True)

    class Meta:
        model = OnCallSchedule
        fields = ["id", "organization", "name", "time_zone", "description", "layers", "notify_shift_changes",
                  "shift_change_channel", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        validators: list = []  # name uniqueness is checked in validate_name with a message naming the field

    def validate_time_zone(self, value: str) -> str:
        try:
            return validate_time_zone(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_name(self, value: str) -> str:
        value = value.strip()
        taken = OnCallSchedule.objects.for_org(_organization(self)).filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This organization already has a schedule with this name.")
        return value

    def validate_layers(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        priorities = [attrs["priority"] if attrs.get("priority") is not None else index
                      for index, attrs in enumerate(value)]
        if len(set(priorities)) != len(priorities):
            raise serializers.ValidationError("Two layers of a schedule cannot share a priority.")
        return value

    def to_representation(self, instance: OnCallSchedule) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["layers"] = [layer_snapshot(layer) for layer in instance.layers.all()]  # prefetched by the view
        return data


class OverrideSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    user = MemberField()
    start = InstantField()
    end = InstantField()
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = ScheduleOverride
        fields = ["id", "user", "start", "end", "created_by", "created_at"]
        read_only_fields = ["created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start = attrs.get("start", getattr(self.instance, "start", None))
        end = attrs.get("end", getattr(self.instance, "end", None))
        if start is not None and end is not None and end <= start:
            raise serializers.ValidationError({"end": "An override must end after it starts."})
        return attrs

    def get_created_by(self, obj: ScheduleOverride) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None


class CalendarFeedSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = CalendarFeed
        fields = ["id", "url", "created_at", "last_fetched_at"]
        read_only_fields = fields

    def get_url(self, obj: CalendarFeed) -> str:
        request = self.context.get("request")
        path = feed_path(obj)
        return request.build_absolute_uri(path) if request is not None else path
