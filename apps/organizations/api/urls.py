"""/api/v1/organization, /api/v1/members, /api/v1/tokens."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.organizations.api.views import AgentTokenViewSet, MembershipViewSet, OrganizationViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # DRF 3.16 turns any truthy constructor value into "/"
router.register("members", MembershipViewSet, basename="member")
router.register("tokens", AgentTokenViewSet, basename="token")

urlpatterns = [
    path("organization", OrganizationViewSet.as_view({"get": "current", "patch": "update_current"}),
         name="organization-current"),
    *router.urls,
]
