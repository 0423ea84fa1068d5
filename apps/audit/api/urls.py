"""/api/v1/audit-events."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.audit.api.views import AuditEventViewSet

router = SimpleRouter()
# DRF's constructor only takes a bool; the documented URLs have no trailing slash, and clients that add
# one must not get a redirect, so the slash is optional (reverse() yields the slash-less form).
router.trailing_slash = "/?"
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
