"""API for hosts, services and dependencies: role matrix, organization isolation, filters, audit."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.hosts.models import Host, Service, ServiceDependency
from tests.hosts.factories import HostFactory, ServiceFactory

pytestmark = pytest.mark.django_db

ROLE_EXPECTATIONS = [  # (role, may read, may create/update, may delete hosts)
    (Role.VIEWER, True, False, False),
    (Role.EDITOR, True, True, False),
    (Role.ADMIN, True, True, True),
    (Role.OWNER, True, True, True),
]


def _status(allowed: bool, ok: int) -> int:
    return ok if allowed else 403


@pytest.mark.parametrize(("role", "read", "write", "delete"), ROLE_EXPECTATIONS)
def test_host_endpoints_follow_the_role_matrix(api_client, user_with_role, org, role, read, write, delete):
    client = api_client(user=user_with_role(role))
    host = HostFactory(organization=org)
    assert client.get("/api/v1/hosts").status_code == _status(read, 200)
    assert client.get(f"/api/v1/hosts/{host.public_id}").status_code == _status(read, 200)
    assert client.post("/api/v1/hosts", {"name": "new"}, format="json").status_code == _status(write, 201)
    assert client.patch(f"/api/v1/hosts/{host.public_id}", {"environment": "staging"},
                        format="json").status_code == _status(write, 200)
    assert client.delete(f"/api/v1/hosts/{host.public_id}").status_code == _status(delete, 204)


@pytest.mark.parametrize(("role", "read", "write", "delete"), ROLE_EXPECTATIONS)
def test_service_endpoints_follow_the_role_matrix(api_client, user_with_role, org, role, read, write, delete):
    client = api_client(user=user_with_role(role))
    service = ServiceFactory(organization=org)
    body = {"host": str(service.host.public_id), "name": "worker", "kind": "queue"}
    assert client.get("/api/v1/services").status_code == _status(read, 200)
    assert client.get(f"/api/v1/services/{service.public_id}").status_code == _status(read, 200)
    assert client.post("/api/v1/services", body, format="json").status_code == _status(write, 201)
    assert client.patch(f"/api/v1/services/{service.public_id}", {"description": "x"},
                        format="json").status_code == _status(write, 200)
    assert client.delete(f"/api/v1/services/{service.public_id}").status_code == _status(delete, 204)


@pytest.mark.parametrize(("role", "read", "write", "_delete"), ROLE_EXPECTATIONS)
def test_dependency_endpoints_follow_the_role_matrix(api_client, user_with_role, org, role, read, write, _delete):
    client = api_client(user=user_with_role(role))
    a, b, c = (HostFactory(organization=org) for _ in range(3))
    edge = ServiceDependency.objects.create(organization=org, upstream_host=a, downstream_host=b)
    body = {"upstream_host": str(b.public_id), "downstream_host": str(c.public_id)}
    assert client.get("/api/v1/dependencies").status_code == _status(read, 200)
    assert client.get(f"/api/v1/dependencies/{edge.public_id}").status_code == _status(read, 200)
    assert client.post("/api/v1/dependencies", body, format="json").status_code == _status(write, 201)
    assert client.delete(f"/api/v1/dependencies/{edge.public_id}").status_code == _status(write, 204)


@pytest.mark.parametrize(("scope", "read", "write"), [
    ("ingest", False, False), ("write", False, False), ("read", True, False), ("config", True, True),
])
def test_agent_tokens_follow_their_scope(api_client, make_token, org, scope, read, write):
    """Ingest tokens push (and register hosts through the doors) but never read or edit the inventory."""
    host = HostFactory(organization=org)
    service = ServiceFactory(organization=org, host=host)
    client = api_client(token=make_token(scope)[1])
    assert client.get("/api/v1/hosts").status_code == _status(read, 200)
    assert client.get(f"/api/v1/services/{service.public_id}").status_code == _status(read, 200)
    assert client.get("/api/v1/dependencies").status_code == _status(read, 200)
    assert client.post("/api/v1/hosts", {"name": "a"}, format="json").status_code == _status(write, 201)
    assert client.patch(f"/api/v1/services/{service.public_id}", {"description": "x"},
                        format="json").status_code == _status(write, 200)
    assert client.delete(f"/api/v1/hosts/{host.public_id}").status_code == _status(write, 204)
    assert Host.objects.filter(pk=host.pk).exists() is not write


def test_token_refusal_names_the_scope_needed(api_client, make_token):
    response = api_client(token=make_token("read")[1]).post("/api/v1/hosts", {"name": "a"}, format="json")
    assert response.status_code == 403
    assert response.json()["required_scope"] == "config"
    assert response.json()["token_scope"] == "read"


@pytest.mark.parametrize("kind", ["hosts", "services", "dependencies"])
def test_other_org_gets_404_for_a_config_token(api_client, make_token, other_org, kind):
    host = HostFactory(organization=other_org)
    service = ServiceFactory(organization=other_org, host=host)
    edge = ServiceDependency.objects.create(organization=other_org, upstream_host=host, downstream_service=service)
    target = {"hosts": host, "services": service, "dependencies": edge}[kind]
    client = api_client(token=make_token("config")[1])
    assert client.get(f"/api/v1/{kind}/{target.public_id}").status_code == 404
    assert client.delete(f"/api/v1/{kind}/{target.public_id}").status_code == 404
    assert client.get(f"/api/v1/{kind}").json()["results"] == []
    assert Host.objects.filter(pk=host.pk).exists()


def test_anonymous_gets_401_or_403():
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/hosts").status_code in (401, 403)


@pytest.mark.parametrize("kind", ["hosts", "services", "dependencies"])
def test_other_org_gets_404(api_client, owner, other_org, kind):
    host = HostFactory(organization=other_org)
    service = ServiceFactory(organization=other_org, host=host)
    edge = ServiceDependency.objects.create(organization=other_org, upstream_host=host, downstream_service=service)
    target = {"hosts": host, "services": service, "dependencies": edge}[kind]
    client = api_client(user=owner)
    url = f"/api/v1/{kind}/{target.public_id}"
    assert client.get(url).status_code == 404
    if kind != "dependencies":
        assert client.patch(url, {"name": "stolen"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(f"/api/v1/{kind}").json()["results"] == []
    assert Host.objects.filter(pk=host.pk, name=host.name).exists()


def test_outsider_gets_404_for_our_hosts(api_client, other_org_user, org):
    host = HostFactory(organization=org)
    client = api_client(user=other_org_user)
    assert client.get(f"/api/v1/hosts/{host.public_id}").status_code == 404
    assert client.get("/api/v1/hosts", HTTP_X_ORGANIZATION=org.slug).status_code == 404


def test_service_on_another_organizations_host_is_a_400_naming_the_field(api_client, owner, other_org):
    foreign = HostFactory(organization=other_org)
    response = api_client(user=owner).post("/api/v1/services", {"host": str(foreign.public_id), "name": "x"},
                                           format="json")
    assert response.status_code == 400
    assert "host" in response.json()
    assert not Service.objects.exists()


def test_dependency_on_another_organizations_node_is_a_400_naming_the_field(api_client, owner, org, other_org):
    ours, theirs = HostFactory(organization=org), HostFactory(organization=other_org)
    response = api_client(user=owner).post(
        "/api/v1/dependencies", {"upstream_host": str(theirs.public_id), "downstream_host": str(ours.public_id)},
        format="json")
    assert response.status_code == 400
    assert "upstream_host" in response.json()


def test_dependency_needs_one_node_per_side(api_client, owner, org):
    host = HostFactory(organization=org)
    response = api_client(user=owner).post("/api/v1/dependencies", {"upstream_host": str(host.public_id)},
                                           format="json")
    assert response.status_code == 400
    assert "downstream_host" in response.json()


def test_dependency_cycle_is_a_400_with_the_path(api_client, owner, org):
    db = HostFactory(organization=org, name="db-1")
    api = ServiceFactory(organization=org, name="api")
    client = api_client(user=owner)
    ok = client.post("/api/v1/dependencies", {"upstream_host": str(db.public_id),
                                              "downstream_service": str(api.public_id)}, format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["upstream"] == {"type": "host", "id": str(db.public_id), "name": "db-1"}
    response = client.post("/api/v1/dependencies", {"upstream_service": str(api.public_id),
                                                    "downstream_host": str(db.public_id)}, format="json")
    assert response.status_code == 400
    assert "api → db-1 → api would form a cycle." in str(response.json())


def test_dependencies_cannot_be_edited(api_client, owner, org):
    a, b = HostFactory(organization=org), HostFactory(organization=org)
    edge = ServiceDependency.objects.create(organization=org, upstream_host=a, downstream_host=b)
    response = api_client(user=owner).patch(f"/api/v1/dependencies/{edge.public_id}", {}, format="json")
    assert response.status_code == 405


def test_host_detail_includes_services_and_status(api_client, owner, org):
    host = HostFactory(organization=org, last_seen_at=timezone.now())
    ServiceFactory(organization=org, host=host, name="nginx")
    body = api_client(user=owner).get(f"/api/v1/hosts/{host.public_id}").json()
    assert body["status"] == "up"
    assert [s["name"] for s in body["services"]] == ["nginx"]
    assert "id" in body and body["id"] == str(host.public_id)


def test_host_create_validates_and_audits(api_client, owner):
    client = api_client(user=owner)
    bad = client.post("/api/v1/hosts", {"name": "h", "country": "XX", "latitude": 91, "tags": {"a": 1}},
                      format="json")
    assert bad.status_code == 400
    assert {"country", "latitude", "tags"} <= set(bad.json())
    good = client.post("/api/v1/hosts", {"name": "h", "country": "de", "tags": {"role": "db"}}, format="json")
    assert good.status_code == 201, good.content
    assert good.json()["country"] == "DE" and good.json()["status"] == "unknown"
    assert AuditEvent.objects.filter(action="host.registered", object_id=good.json()["id"],
                                     actor_user=owner).exists()
    duplicate = client.post("/api/v1/hosts", {"name": "h"}, format="json")
    assert duplicate.status_code == 400


def test_host_list_filters(api_client, owner, org):
    now = timezone.now()
    web = HostFactory(organization=org, name="web-1", environment="production", datacenter="fra1", country="DE",
                      tags={"role": "web", "team": "edge"}, last_seen_at=now)
    db = HostFactory(organization=org, name="db-1", environment="staging", datacenter="ams1", country="NL",
                     tags={"role": "db"}, last_seen_at=now - datetime.timedelta(hours=1))
    new = HostFactory(organization=org, name="new-1", environment="staging", datacenter="ams1", country="NL")
    client = api_client(user=owner)

    def names(query: str) -> set[str]:
        response = client.get(f"/api/v1/hosts?{query}")
        assert response.status_code == 200, response.content
        return {h["name"] for h in response.json()["results"]}

    assert names("name=web-1") == {web.name}
    assert names("environment=staging") == {db.name, new.name}
    assert names("datacenter=fra1") == {web.name}
    assert names("country=nl") == {db.name, new.name}
    assert names("tag=role:web") == {web.name}
    assert names("tag=role:web&tag=team:edge") == {web.name}
    assert names("tag=role:db&tag=team:edge") == set()
    assert names("status=up") == {web.name}
    assert names("status=down") == {db.name}
    assert names("status=unknown") == {new.name}
    assert client.get("/api/v1/hosts?status=sideways").status_code == 400
    assert client.get("/api/v1/hosts?tag=novalue").status_code == 400
    statuses = {h["name"]: h["status"] for h in client.get("/api/v1/hosts").json()["results"]}
    assert statuses == {"web-1": "up", "db-1": "down", "new-1": "unknown"}


def test_service_update_and_delete_are_audited(api_client, owner, org):
    service = ServiceFactory(organization=org)
    client = api_client(user=owner)
    assert client.patch(f"/api/v1/services/{service.public_id}", {"health_check_url": "db:5432"},
                        format="json").status_code == 200
    assert client.patch(f"/api/v1/services/{service.public_id}", {"health_check_url": "nope"},
                        format="json").status_code == 400
    assert client.delete(f"/api/v1/services/{service.public_id}").status_code == 204
    actions = set(AuditEvent.objects.filter(object_id=str(service.public_id)).values_list("action", flat=True))
    assert actions == {"service.updated", "service.deleted"}


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_json_null_in_a_form_encoded_body_is_a_400_not_a_500(api_client, owner, org, method):
    # Hostile input class: JSON `null` as the text of a form field for a JSON-typed, non-null field. DRF checked
    # for null before parsing the text, so `hardware_info=null` reached the NOT NULL column (found by
    # tests/core/test_api_schema_fuzz.py).
    host = HostFactory(organization=org, name="web-1", hardware_info={"cpus": 4})
    path = "/api/v1/hosts/" if method == "post" else f"/api/v1/hosts/{host.public_id}/"
    response = getattr(api_client(user=owner), method)(
        path, "name=web-2&hardware_info=null", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content
    assert response.json() == {"hardware_info": ["This field may not be null."]}
    assert list(Host.objects.for_org(org).values_list("name", "hardware_info")) == [("web-1", {"cpus": 4})]


def test_a_json_object_in_a_form_encoded_body_is_still_accepted(api_client, owner, org):
    response = api_client(user=owner).post("/api/v1/hosts/", 'name=web-2&hardware_info={"cpus": 8}',
                                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    assert Host.objects.for_org(org).get(name="web-2").hardware_info == {"cpus": 8}
