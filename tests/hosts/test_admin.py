"""Admin for the inventory: lists with derived status, search on tags, writes through the services
(audited, caches evicted), the organization fixed after creation, no cycles."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.hosts.models import Host, Service, ServiceDependency
from apps.hosts.services import resolve_hosts
from apps.metrics.models import Series
from tests.hosts.factories import HostFactory, ServiceFactory
from tests.metrics.factories import SeriesFactory
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db
# Caches are filled and evicted after commit: these tests let transactions really commit.
COMMITS = pytest.mark.django_db(transaction=True)


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
    # Added through register_host, like the API: the same audit action and the same validation.
    assert AuditEvent.objects.filter(action="host.registered", object_id=str(host.public_id)).exists()


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


def _change_form(host: Host, **overrides: object) -> dict[str, object]:
    """The host change form as the admin page posts it (the organization is read-only there)."""
    data: dict[str, object] = {
        "name": host.name, "display_name": host.display_name, "environment": host.environment,
        "datacenter": host.datacenter, "country": host.country, "region": host.region, "city": host.city,
        "latitude": "", "longitude": "", "tags": "{}", "hardware_info": "{}", "agent_version": "",
        "is_active": "on", "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


@COMMITS
def test_admin_rename_goes_through_the_service_audits_and_evicts_caches(admin_client_, api_client, owner, org):
    host = HostFactory(organization=org, name="web-1")
    SeriesFactory(organization=org, name="cpu", labels={"host": "web-1"}, host=host)
    assert resolve_hosts(organization=org, names=["web-1"]) == {"web-1": host.pk}  # ids cached
    reader = api_client(user=owner)
    assert reader.get("/api/v1/metrics?name=cpu").json()["series"][0]["host"] == "web-1"  # catalogue cached

    response = admin_client_.post(f"/admin/hosts/host/{host.pk}/change/", _change_form(host, name="web-one"))
    assert response.status_code == 302, response.content[:2000]

    event = AuditEvent.objects.get(action="host.updated", object_id=str(host.public_id))
    assert event.changes["name"] == ["web-1", "web-one"] and event.actor_repr == "root"
    assert reader.get(f"/api/v1/hosts/{host.public_id}").json()["name"] == "web-one"
    assert reader.get("/api/v1/metrics?name=cpu").json()["series"][0]["host"] == "web-one"
    # The old name no longer resolves to the renamed host: an agent still using it gets a new host.
    assert resolve_hosts(organization=org, names=["web-1"])["web-1"] != host.pk


def test_admin_change_without_changes_writes_no_audit_row(admin_client_, org):
    host = HostFactory(organization=org, name="quiet")
    assert admin_client_.post(f"/admin/hosts/host/{host.pk}/change/", _change_form(host)).status_code == 302
    assert not AuditEvent.objects.filter(action="host.updated").exists()


def test_admin_shows_the_organization_read_only_on_change_and_ignores_a_posted_one(admin_client_, org, other_org):
    host = HostFactory(organization=org, name="pinned")
    page = admin_client_.get(f"/admin/hosts/host/{host.pk}/change/").content.decode()
    assert 'name="organization"' not in page and "Acme" in page
    assert 'name="organization"' in admin_client_.get("/admin/hosts/host/add/").content.decode()
    response = admin_client_.post(f"/admin/hosts/host/{host.pk}/change/",
                                  _change_form(host, organization=other_org.pk, environment="staging"))
    assert response.status_code == 302
    host.refresh_from_db()
    assert (host.organization_id, host.environment) == (org.pk, "staging")


@COMMITS
def test_admin_delete_goes_through_the_service(admin_client_, org):
    host = HostFactory(organization=org, name="old-box")
    series = SeriesFactory(organization=org, name="cpu", labels={"host": "old-box"}, host=host)
    resolve_hosts(organization=org, names=["old-box"])
    response = admin_client_.post(f"/admin/hosts/host/{host.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Host.objects.filter(pk=host.pk).exists()
    event = AuditEvent.objects.get(action="host.deleted", object_id=str(host.public_id))
    assert event.organization_id == org.pk and event.changes["name"] == ["old-box", None]
    assert Series.objects.get(pk=series.pk).host_id is None  # series and history stay
    assert resolve_hosts(organization=org, names=["old-box"])["old-box"] != host.pk


@COMMITS
def test_admin_bulk_delete_action_goes_through_the_service(admin_client_, org):
    hosts = [HostFactory(organization=org, name=f"batch-{n}") for n in range(3)]
    keep = HostFactory(organization=org, name="keep")
    names = [h.name for h in hosts]
    cached = resolve_hosts(organization=org, names=names)
    response = admin_client_.post("/admin/hosts/host/", {
        "action": "delete_selected", "_selected_action": [h.pk for h in hosts], "post": "yes"})
    assert response.status_code == 302
    assert list(Host.objects.values_list("name", flat=True)) == [keep.name]
    audited = set(AuditEvent.objects.filter(action="host.deleted").values_list("object_id", flat=True))
    assert audited == {str(h.public_id) for h in hosts}
    # Only the service evicts the name -> id cache: a plain queryset delete would leave these ids cached.
    fresh = resolve_hosts(organization=org, names=names)
    assert not set(fresh.values()) & set(cached.values())


def test_services_are_read_only_in_the_host_page_inline(admin_client_, org):
    service = ServiceFactory(organization=org, name="api")
    page = admin_client_.get(f"/admin/hosts/host/{service.host.pk}/change/").content.decode()
    assert "api" in page and 'name="services-0-name"' not in page
    data = _change_form(service.host, **{"services-TOTAL_FORMS": "1", "services-INITIAL_FORMS": "1",
                                         "services-0-id": service.pk, "services-0-name": "renamed",
                                         "services-0-kind": "http", "services-0-host": service.host.pk})
    admin_client_.post(f"/admin/hosts/host/{service.host.pk}/change/", data)
    assert Service.objects.get(pk=service.pk).name == "api"
