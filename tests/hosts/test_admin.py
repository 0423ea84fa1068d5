"""Admin for the inventory: lists with derived status, search on tags, audited writes, no cycles."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.hosts.models import Host, ServiceDependency
from tests.hosts.factories import HostFactory, ServiceFactory
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_host_changelist_shows_status_and_filters(admin_client_, org):
    HostFactory(organization=org, name="up-host", last_seen_at=timezone.now())
    HostFactory(organization=org, name="down-host", last_seen_at=timezone.now() - datetime.timedelta(hours=1))
    response = admin_client_.get("/admin/hosts/host/")
    assert response.status_code == 200
    assert b"up-host" in response.content and b"down-host" in response.content
    down = admin_client_.get("/admin/hosts/host/?status=down").content
    assert b"down-host" in down and b"up-host" not in down


def test_host_search_covers_tags(admin_client_, org):
    HostFactory(organization=org, name="tagged", tags={"team": "payments"})
    HostFactory(organization=org, name="plain")
    content = admin_client_.get("/admin/hosts/host/?q=payments").content
    assert b"tagged" in content and b"plain" not in content


def test_admin_host_changes_are_audited(admin_client_, org):
    response = admin_client_.post("/admin/hosts/host/add/", {
        "organization": org.pk, "name": "from-admin", "country": "FR", "tags": "{}", "hardware_info": "{}",
        "is_active": "on", "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content[:2000]
    host = Host.objects.get(name="from-admin")
    assert AuditEvent.objects.filter(action="host.created", object_id=str(host.public_id)).exists()


def test_admin_rejects_a_bad_country(admin_client_, org):
    response = admin_client_.post("/admin/hosts/host/add/", {
        "organization": org.pk, "name": "x", "country": "XX", "tags": "{}", "hardware_info": "{}",
        "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200 and b"ISO 3166-1" in response.content


def test_admin_dependency_add_goes_through_the_cycle_check(admin_client_, org):
    db = HostFactory(organization=org, name="db-1")
    api = ServiceFactory(organization=org, name="api")
    form = {"organization": org.pk, "upstream_host": db.pk, "downstream_service": api.pk}
    assert admin_client_.post("/admin/hosts/servicedependency/add/", form).status_code == 302
    edge = ServiceDependency.objects.get()
    assert AuditEvent.objects.filter(action="dependency.added", object_id=str(edge.public_id)).exists()
    reverse = {"organization": org.pk, "upstream_service": api.pk, "downstream_host": db.pk}
    response = admin_client_.post("/admin/hosts/servicedependency/add/", reverse)
    assert response.status_code == 200
    assert "api → db-1 → api would form a cycle." in response.content.decode()
    assert ServiceDependency.objects.count() == 1


def test_service_and_dependency_changelists_load(admin_client_, org):
    api = ServiceFactory(organization=org, name="api")
    ServiceDependency.objects.create(organization=org, upstream_host=HostFactory(organization=org),
                                     downstream_service=api)
    assert admin_client_.get("/admin/hosts/service/").status_code == 200
    assert admin_client_.get("/admin/hosts/servicedependency/").status_code == 200
