"""/api/v1/schedules (CRUD, /oncall, /shifts, /overrides), /api/v1/schedules/calendar-feeds and the
session-less feed /api/v1/schedules/ical/<token>.ics (with or without a trailing slash)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.escalation.api.views import CalendarFeedViewSet, ScheduleViewSet, calendar_feed

router = SimpleRouter()
router.trailing_slash = "/?"  # as in apps.hosts.api.urls: DRF 3.16 needs the attribute for an optional slash
router.register("schedules/calendar-feeds", CalendarFeedViewSet, basename="calendar-feed")
router.register("schedules", ScheduleViewSet, basename="schedule")

urlpatterns = [
    path("schedules/ical/<str:token>.ics", calendar_feed, name="schedule-calendar-feed"),
    *router.urls,
]
