"""`/api/v1/hosts`, `/api/v1/services`, `/api/v1/dependencies`: organization-scoped CRUD whose writes go
through apps.hosts.services, so API changes are validated and audited like every other change."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.core.api.actors import request_actor
from apps.core.api.fields import is_uuid
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, DEFAULT_REQUIRED_ROLES, OrgScopedViewSet
from apps.core.roles import Role
from apps.hosts import services
from apps.hosts.api.serializers import (
    HostDetailSerializer,
    HostSerializer,
    ServiceDependencySerializer,
    ServiceSerializer,
)
from apps.hosts.filters import filter_hosts
from apps.hosts.models import Host, Service, ServiceDependency


def _without_org(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "organization"}


class HostViewSet(OrgScopedViewSet):
    """Hosts with derived status; the detail includes the host's services."""

    queryset = Host.objects.all()
    serializer_class = HostSerializer
    required_scopes = CONFIG_REQUIRED_SCOPES

    def get_queryset(self) -> Any:
        self.now = timezone.now()
        queryset = super().get_queryset().with_status(self.now)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("services")
        if self.action == "list":
            queryset = filter_hosts(queryset, self.request.query_params, self.now)
        return queryset

    def get_serializer_class(self) -> Any:
        return HostDetailSerializer if self.action == "retrieve" else HostSerializer

    def perform_create(self, serializer: HostSerializer) -> None:
        data = _without_org(serializer.validated_data)
        serializer.instance = services.register_host(organization=self.request.organization,
                                                     actor=request_actor(self.request), **data)

    def perform_update(self, serializer: HostSerializer) -> None:
        serializer.instance = services.update_host(host=serializer.instance, actor=request_actor(self.request),
                                                   **_without_org(serializer.validated_data))

    def perform_destroy(self, instance: Host) -> None:
        services.delete_host(host=instance, actor=request_actor(self.request))


class ServiceViewSet(OrgScopedViewSet):
    """Services on the organization's hosts; filter with ?host=<host id>&kind=http."""

    queryset = Service.objects.select_related("host")
    serializer_class = ServiceSerializer
    required_scopes = CONFIG_REQUIRED_SCOPES

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        params = self.request.query_params
        if self.action == "list" and params.get("host"):
            queryset = queryset.filter(host__public_id=params["host"]) if is_uuid(params["host"]) else queryset.none()
        if self.action == "list" and params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        return queryset

    def perform_create(self, serializer: ServiceSerializer) -> None:
        serializer.instance = services.create_service(organization=self.request.organization,
                                                      actor=request_actor(self.request),
                                                      **_without_org(serializer.validated_data))

    def perform_update(self, serializer: ServiceSerializer) -> None:
        serializer.instance = services.update_service(service=serializer.instance, actor=request_actor(self.request),
                                                      **_without_org(serializer.validated_data))

    def perform_destroy(self, instance: Service) -> None:
        services.delete_service(service=instance, actor=request_actor(self.request))


class ServiceDependencyViewSet(OrgScopedViewSet):
    """Dependency edges. Edges are added and removed, never edited (an edit is a remove plus an add)."""

    queryset = ServiceDependency.objects.select_related(
        "upstream_host", "upstream_service", "downstream_host", "downstream_service")
    serializer_class = ServiceDependencySerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    required_roles = {**DEFAULT_REQUIRED_ROLES, "destroy": Role.EDITOR}
    required_scopes = CONFIG_REQUIRED_SCOPES

    def perform_create(self, serializer: ServiceDependencySerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.add_dependency(
            organization=self.request.organization, actor=request_actor(self.request),
            upstream=data.get("upstream_host") or data.get("upstream_service"),
            downstream=data.get("downstream_host") or data.get("downstream_service"),
        )

    def perform_destroy(self, instance: ServiceDependency) -> None:
        services.remove_dependency(dependency=instance, actor=request_actor(self.request))

