"""/api/v1/schedules (CRUD, /oncall, /shifts, /overrides), /api/v1/schedules/calendar-feeds and the
session-less feed /api/v1/schedules/ical/<token>.ics (with or without a trailing slash); escalation policies,
rule and group routes, group escalations and contact methods; the signed alert links
/api/v1/escalation/links/<token>."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.escalation.api.assignments import AssignmentViewSet
from apps.escalation.api.group_views import GroupEscalationViewSet, GroupRouteViewSet
from apps.escalation.api.links import alert_link, contact_verification
from apps.escalation.api.policy_views import ContactMethodViewSet, PolicyViewSet, RoutingViewSet
from apps.escalation.api.views import CalendarFeedViewSet, ScheduleViewSet, calendar_feed

router = SimpleRouter()
router.trailing_slash = "/?"  # as in apps.hosts.api.urls: DRF 3.16 needs the attribute for an optional slash
router.register("schedules/calendar-feeds", CalendarFeedViewSet, basename="calendar-feed")
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("escalation-policies", PolicyViewSet, basename="escalation-policy")
router.register("escalation-routes", RoutingViewSet, basename="escalation-route")
router.register("escalation-group-routes", GroupRouteViewSet, basename="escalation-group-route")
router.register("group-escalations", GroupEscalationViewSet, basename="group-escalation")
router.register("contact-methods", ContactMethodViewSet, basename="contact-method")
router.register("oncall-assignments", AssignmentViewSet, basename="oncall-assignment")

urlpatterns = [
    path("schedules/ical/<str:token>.ics", calendar_feed, name="schedule-calendar-feed"),
    # Signed acknowledge/resolve links in escalation pages (a confirmation page, not JSON).
    path("escalation/links/<str:token>", alert_link, name="escalation-link"),
    # Signed contact-method verification links (a confirmation page, not JSON).
    path("escalation/contact-verification/<str:token>", contact_verification,
         name="escalation-contact-verification"),
    *router.urls,
]
