"""`GET /api/v1/audit-events[/<id>]`: the organization's audit log for owners and admins. Read-only by
construction: the log is append-only, and only services write to it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import ValidationError

from apps.audit.api.serializers import AuditEventSerializer
from apps.audit.filters import apply_filters
from apps.audit.forms import AuditFilterForm
from apps.audit.models import AuditEvent
from apps.core.api.viewsets import OrgScopedReadOnlyViewSet
from apps.core.roles import Role

FILTER_PARAMETERS = [
    OpenApiParameter("actor", OpenApiTypes.STR, description="User or token name contains"),
    OpenApiParameter("action", OpenApiTypes.STR, description="Action prefix, e.g. `token.`"),
    OpenApiParameter("object_type", OpenApiTypes.STR, description="e.g. `organizations.agenttoken`"),
    OpenApiParameter("object_id", OpenApiTypes.STR, description="The object's public id"),
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day, inclusive"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, inclusive"),
]


@extend_schema_view(list=extend_schema(parameters=FILTER_PARAMETERS))
class AuditEventViewSet(OrgScopedReadOnlyViewSet):
    """Newest first, cursor-paginated; filters as on the audit page."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    required_roles = {"list": Role.ADMIN, "retrieve": Role.ADMIN}
    required_scopes: dict[str, str] = {}  # no token scope reads the audit log: it names members and tokens

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError({field: list(errors) for field, errors in form.errors.items()})
        return apply_filters(queryset, form.cleaned_data)
