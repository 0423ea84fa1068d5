"""`/api/v1/schedules…`: organization-scoped schedule CRUD, who is on call, the final schedule, overrides,
and the caller's calendar feeds. Writes go through apps.escalation.services (validated and audited);
reads of who is on call go through the same pure functions the escalation engine will use."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.actors import request_actor
from apps.core.api.params import bool_param
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, DEFAULT_REQUIRED_ROLES, OrgScopedMixin, OrgScopedViewSet
from apps.core.roles import Role
from apps.core.scopes import TokenScope
from apps.escalation import services
from apps.escalation.api.serializers import (
    CalendarFeedSerializer,
    InstantField,
    OverrideSerializer,
    ScheduleSerializer,
    layer_data,
    parse_instant,
)
from apps.escalation.feeds import feed_for_token, render_feed
from apps.escalation.models import CalendarFeed, OnCallSchedule, ScheduleOverride

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
#: Longest range /shifts answers in one request (a quarter, with slack for month boundaries).
MAX_SHIFTS_RANGE = dt.timedelta(days=93)
DEFAULT_SHIFTS_RANGE = dt.timedelta(days=7)

# The schedule's sub-resources answer their own shapes, not a schedule's; the schema says which.
_INSTANT = "RFC 3339, e.g. 2026-11-21T10:00:00Z"
ONCALL_RESPONSE = inline_serializer("ScheduleOnCall", {
    "schedule": serializers.UUIDField(), "at": serializers.DateTimeField(), "time_zone": serializers.CharField(),
    "users": serializers.ListField(child=serializers.CharField()), "source": serializers.CharField()})
SHIFTS_RESPONSE = inline_serializer("ScheduleShifts", {
    "schedule": serializers.UUIDField(), "time_zone": serializers.CharField(), "start": serializers.DateTimeField(),
    "end": serializers.DateTimeField(), "shifts": inline_serializer("Shift", {
        "user": serializers.CharField(), "start": serializers.DateTimeField(), "end": serializers.DateTimeField(),
        "source": serializers.CharField()}, many=True)})
OVERRIDES_RESPONSE = inline_serializer("ScheduleOverrides", {"results": OverrideSerializer(many=True)})



def _instant_param(request: Request, name: str, default: dt.datetime) -> dt.datetime:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ValidationError({name: str(exc)}) from exc


def _iso(instant: dt.datetime) -> str:
    return InstantField().to_representation(instant)


class _ScheduleSchema(AutoSchema):
    """The override list and one override are both GETs under ``…/overrides``: name them apart in OpenAPI."""

    def get_operation_id(self) -> str:
        names = {"overrides": "v1_schedules_overrides_list", "override_detail": "v1_schedules_override_retrieve"}
        if self.method == "GET" and getattr(self.view, "action", None) in names:
            return names[self.view.action]
        return super().get_operation_id()


class ScheduleViewSet(OrgScopedViewSet):
    """Schedules with their layers; PATCH with ``layers`` replaces all layers at once."""

    schema = _ScheduleSchema()
    queryset = OnCallSchedule.objects.all()
    serializer_class = ScheduleSerializer
    lookup_value_regex = UUID_PATTERN
    required_roles = {**DEFAULT_REQUIRED_ROLES, "oncall": Role.VIEWER, "shifts": Role.VIEWER,
                      "overrides": Role.VIEWER, "create_override": Role.EDITOR,
                      "override_detail": Role.VIEWER, "update_override": Role.EDITOR,
                      "delete_override": Role.EDITOR}
    required_scopes = {**CONFIG_REQUIRED_SCOPES, "oncall": TokenScope.READ, "shifts": TokenScope.READ,
                       "overrides": TokenScope.READ, "create_override": TokenScope.CONFIG,
                       "override_detail": TokenScope.READ, "update_override": TokenScope.CONFIG,
                       "delete_override": TokenScope.CONFIG}

    def get_queryset(self) -> Any:
        return super().get_queryset().prefetch_related("layers__memberships__user")

    def perform_create(self, serializer: ScheduleSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_schedule(
            organization=self.request.organization, actor=request_actor(self.request), name=data["name"],
            time_zone=data["time_zone"], description=data.get("description", ""),
            layers=layer_data(data.get("layers", [])), notify_shift_changes=data.get("notify_shift_changes", False),
            shift_change_channel=data.get("shift_change_channel"))

    def perform_update(self, serializer: ScheduleSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.update_schedule(
            schedule=serializer.instance, actor=request_actor(self.request), name=data.get("name"),
            time_zone=data.get("time_zone"), description=data.get("description"),
            layers=layer_data(data["layers"]) if "layers" in data else None,
            notify_shift_changes=data.get("notify_shift_changes"),
            shift_change_channel=data.get("shift_change_channel", services.KEEP))

    def perform_destroy(self, instance: OnCallSchedule) -> None:
        services.delete_schedule(schedule=instance, actor=request_actor(self.request))

    @extend_schema(parameters=[OpenApiParameter("at", str, description=f"{_INSTANT}; default now.")],
                   responses=ONCALL_RESPONSE)
    @action(detail=True, methods=["get"])
    def oncall(self, request: Request, public_id: str) -> Response:
        """Who is on call at ``?at=`` (RFC 3339; default now)."""
        schedule = self.get_object()
        at = _instant_param(request, "at", timezone.now())
        users, source = schedule.on_call_at(at)
        return Response({"schedule": str(schedule.public_id), "at": _iso(at), "time_zone": schedule.time_zone,
                         "users": [user.get_username() for user in users], "source": source})

    @extend_schema(parameters=[OpenApiParameter("start", str, description=f"{_INSTANT}; default now."),
                               OpenApiParameter("end", str, description=f"{_INSTANT}; default start + 7 days.")],
                   responses=SHIFTS_RESPONSE)
    @action(detail=True, methods=["get"])
    def shifts(self, request: Request, public_id: str) -> Response:
        """The final schedule in [?start, ?end) (default: the next 7 days; at most 93 days)."""
        schedule = self.get_object()
        start = _instant_param(request, "start", timezone.now())
        end = _instant_param(request, "end", start + DEFAULT_SHIFTS_RANGE)
        if end <= start:
            raise ValidationError({"end": "end must be after start."})
        if end - start > MAX_SHIFTS_RANGE:
            raise ValidationError({"end": f"The range may span at most {MAX_SHIFTS_RANGE.days} days."})
        shifts = [{"user": shift.user.get_username(), "start": _iso(shift.start), "end": _iso(shift.end),
                   "source": shift.source} for shift in schedule.final_schedule(start, end)]
        return Response({"schedule": str(schedule.public_id), "time_zone": schedule.time_zone,
                         "start": _iso(start), "end": _iso(end), "shifts": shifts})

    @extend_schema(parameters=[OpenApiParameter("all", bool, description="Every override, ended ones too.")],
                   responses=OVERRIDES_RESPONSE)
    @action(detail=True, methods=["get"])
    def overrides(self, request: Request, public_id: str) -> Response:
        """The schedule's overrides that have not ended (``?all=1``: every one)."""
        schedule = self.get_object()
        queryset = schedule.overrides.select_related("user", "created_by")
        if not bool_param(request.query_params, "all"):
            queryset = queryset.filter(end__gt=timezone.now())
        data = OverrideSerializer(queryset, many=True, context=self.get_serializer_context()).data
        return Response({"results": data})

    @extend_schema(request=OverrideSerializer, responses={201: OverrideSerializer})
    @overrides.mapping.post
    def create_override(self, request: Request, public_id: str) -> Response:
        schedule = self.get_object()
        serializer = OverrideSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        override = services.create_override(schedule=schedule, actor=request_actor(request),
                                            **serializer.validated_data)
        return Response(OverrideSerializer(override, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    def _override(self, override_id: str) -> ScheduleOverride:
        schedule = self.get_object()
        override = schedule.overrides.select_related("user", "created_by").filter(public_id=override_id).first()
        if override is None:
            raise Http404("No such override.")
        return override

    @extend_schema(responses=OverrideSerializer)
    @action(detail=True, methods=["get"], url_path=f"overrides/(?P<override_id>{UUID_PATTERN})",
            url_name="override")
    def override_detail(self, request: Request, public_id: str, override_id: str) -> Response:
        return Response(OverrideSerializer(self._override(override_id), context=self.get_serializer_context()).data)

    @extend_schema(request=OverrideSerializer, responses=OverrideSerializer)
    @override_detail.mapping.patch
    def update_override(self, request: Request, public_id: str, override_id: str) -> Response:
        override = self._override(override_id)
        serializer = OverrideSerializer(override, data=request.data, partial=True,
                                        context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        override = services.update_override(override=override, actor=request_actor(request),
                                            **serializer.validated_data)
        return Response(OverrideSerializer(override, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses={204: None})
    @override_detail.mapping.delete
    def delete_override(self, request: Request, public_id: str, override_id: str) -> Response:
        services.delete_override(override=self._override(override_id), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CalendarFeedViewSet(OrgScopedMixin, mixins.ListModelMixin, mixins.CreateModelMixin,
                          mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in user's own calendar feed in this organization: POST makes a new URL (revoking the
    old one), DELETE revokes. Sessions only: a feed belongs to a person, not to an agent token."""

    queryset = CalendarFeed.objects.select_related("organization")
    serializer_class = CalendarFeedSerializer
    lookup_value_regex = UUID_PATTERN
    required_roles = {"list": Role.VIEWER, "create": Role.VIEWER, "destroy": Role.VIEWER}

    def get_queryset(self) -> Any:
        return super().get_queryset().filter(user=self.request.user, revoked_at__isnull=True)

    def perform_create(self, serializer: CalendarFeedSerializer) -> None:
        serializer.instance = services.create_calendar_feed(organization=self.request.organization,
                                                            user=self.request.user, actor=self.request.user)

    def perform_destroy(self, instance: CalendarFeed) -> None:
        services.revoke_calendar_feed(feed=instance, actor=self.request.user)


@require_safe
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The iCalendar feed behind a signed URL; no session (calendar apps fetch it on their own)."""
    feed = feed_for_token(token)
    if feed is None:
        raise Http404("No such calendar feed.")
    now = timezone.now()
    body = render_feed(feed, now)
    CalendarFeed.objects.filter(pk=feed.pk).update(last_fetched_at=now)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="oncall.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
