"""Inventory pages: role matrix, organization isolation (404), filters, detail content."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.roles import Role
from apps.hosts.models import ServiceDependency
from tests.hosts.factories import HostFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER])
def test_every_member_can_see_the_host_pages(user_with_role, org, role):
    host = HostFactory(organization=org, name="web-1", last_seen_at=timezone.now())
    client = _client(user_with_role(role))
    listing = client.get(f"/{org.slug}/hosts/")
    assert listing.status_code == 200
    assert b"web-1" in listing.content and b"status-up" in listing.content
    assert f'data-ws-path="/ws/{org.slug}/hosts/"'.encode() in listing.content
    assert client.get(f"/{org.slug}/hosts/{host.public_id}/").status_code == 200


def test_anonymous_is_sent_to_login(org):
    response = Client().get(f"/{org.slug}/hosts/")
    assert response.status_code == 302 and "/accounts/" in response["Location"]


def test_other_org_gets_404(other_org_user, org, other_org):
    ours = HostFactory(organization=org)
    client = _client(other_org_user)
    assert client.get(f"/{org.slug}/hosts/").status_code == 404
    assert client.get(f"/{org.slug}/hosts/{ours.public_id}/").status_code == 404
    # Through their own organization's URL our host is not found either.
    assert client.get(f"/{other_org.slug}/hosts/{ours.public_id}/").status_code == 404


def test_unknown_host_is_404(owner, org):
    assert _client(owner).get(f"/{org.slug}/hosts/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_list_shows_only_this_organizations_hosts_and_filters(owner, org, other_org):
    HostFactory(organization=org, name="web-1", environment="production", tags={"role": "web"})
    HostFactory(organization=org, name="db-1", environment="staging", tags={"role": "db"})
    HostFactory(organization=other_org, name="secret-host")
    client = _client(owner)
    content = client.get(f"/{org.slug}/hosts/").content
    assert b"web-1" in content and b"db-1" in content and b"secret-host" not in content
    filtered = client.get(f"/{org.slug}/hosts/?environment=staging&tag=role:db").content
    assert b"db-1" in filtered and b"web-1</a>" not in filtered
    assert b"web-1</a>" not in client.get(f"/{org.slug}/hosts/?status=up").content
    bad = client.get(f"/{org.slug}/hosts/?status=sideways")
    assert bad.status_code == 400 and b"status" in bad.content


def test_detail_shows_inventory_services_and_dependencies(owner, org):
    web = HostFactory(organization=org, name="web-1", city="Berlin", tags={"role": "web"})
    db = HostFactory(organization=org, name="db-1")
    api = ServiceFactory(organization=org, host=web, name="api", health_check_url="http://web-1:8080/health")
    ServiceDependency.objects.create(organization=org, upstream_host=db, downstream_service=api)
    lb = HostFactory(organization=org, name="lb-1")
    ServiceDependency.objects.create(organization=org, upstream_service=api, downstream_host=lb)
    content = _client(owner).get(f"/{org.slug}/hosts/{web.public_id}/").content.decode()
    assert "Berlin" in content and "role:web" in content
    assert "http://web-1:8080/health" in content
    assert "<strong>db-1</strong>" in content  # api depends on db-1
    assert "<strong>lb-1</strong>" in content  # lb-1 needs api
