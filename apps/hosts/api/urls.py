"""/api/v1/hosts, /api/v1/services, /api/v1/dependencies (with or without a trailing slash)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.hosts.api.views import HostViewSet, ServiceDependencyViewSet, ServiceViewSet

router = SimpleRouter()
# DRF 3.16 turns any truthy `trailing_slash` argument into "/", so `SimpleRouter(trailing_slash="/?")`
# no longer makes the slash optional; the attribute is still used verbatim in the URL regexes.
router.trailing_slash = "/?"
router.register("hosts", HostViewSet, basename="host")
router.register("services", ServiceViewSet, basename="service")
router.register("dependencies", ServiceDependencyViewSet, basename="dependency")

urlpatterns = router.urls
