"""/api/v1/dashboards: CRUD as code through the services (audited), per-widget per-field 400s, other
organizations 404, and the role and token-scope matrix."""

from __future__ import annotations

from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.dashboards.models import SavedDashboard
from tests.dashboards.saved_factories import SavedDashboardFactory, widget

pytestmark = pytest.mark.django_db

URL = "/api/v1/dashboards"


def _rows(body: Any) -> list[dict[str, Any]]:
    return body["results"] if isinstance(body, dict) else body


def _status(allowed: bool, ok: int) -> int:
    return ok if allowed else 403


def test_crud_round_trip_through_the_services_with_audit_rows(api_client: Any, owner: Any, org: Any) -> None:
    client = api_client(user=owner)
    created = client.post(URL, {"name": "Edge", "widgets": [
        {"metric": "probe_latency_ms", "labels": 'node_id="n1"', "agg": "p99", "range": "24h", "width": 12}]},
        format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["widgets"] == [widget(metric="probe_latency_ms", labels='node_id="n1"', agg="p99", range="24h",
                                      width=12)]  # defaults filled in, every field present
    board = SavedDashboard.objects.get(public_id=body["id"])
    assert board.organization == org and "organization" not in body

    assert [d["id"] for d in _rows(client.get(URL).json())] == [body["id"]]
    assert client.get(f"{URL}/{board.public_id}").json()["name"] == "Edge"

    reordered = [widget(metric="b"), widget(metric="a")]
    assert client.put(f"{URL}/{board.public_id}", {"name": "Edge 2", "widgets": reordered},
                      format="json").status_code == 200
    assert client.patch(f"{URL}/{board.public_id}", {"description": "probes"}, format="json").status_code == 200
    board.refresh_from_db()
    assert (board.name, board.description, [w["metric"] for w in board.widgets]) == ("Edge 2", "probes", ["b", "a"])

    assert client.delete(f"{URL}/{board.public_id}").status_code == 204
    assert not SavedDashboard.objects.exists()
    actions = list(AuditEvent.objects.filter(object_id=body["id"]).order_by("id").values_list("action", flat=True))
    assert actions == ["dashboard.created", "dashboard.updated", "dashboard.updated", "dashboard.deleted"]


def test_bad_widget_is_a_400_naming_the_widget_and_field(api_client: Any, editor: Any, org: Any) -> None:
    client = api_client(user=editor)
    response = client.post(URL, {"name": "Bad", "widgets": [
        widget(), widget(labels='env=prod'), widget(agg="median", colour="red")]}, format="json")
    assert response.status_code == 400
    errors = response.json()["widgets"]
    assert set(errors) == {"1", "2"}
    assert "cannot parse label matcher" in errors["1"]["labels"][0]
    assert set(errors["2"]) == {"agg", "colour"}
    assert client.post(URL, {"name": "Bad", "widgets": {"metric": "x"}}, format="json").json()["widgets"]
    assert not SavedDashboard.objects.exists() and not AuditEvent.objects.filter(action__startswith="dashboard")


def test_duplicate_name_is_a_400_on_name(api_client: Any, editor: Any, org: Any) -> None:
    SavedDashboardFactory(organization=org, name="Same")
    response = api_client(user=editor).post(URL, {"name": "Same", "widgets": []}, format="json")
    assert response.status_code == 400
    assert response.json() == {"name": ["A dashboard with this name already exists."]}
    assert SavedDashboard.objects.count() == 1


@pytest.mark.parametrize(("role", "read", "write", "delete"), [
    (Role.VIEWER, True, False, False), (Role.EDITOR, True, True, False),
    (Role.ADMIN, True, True, True), (Role.OWNER, True, True, True),
])
def test_role_matrix(api_client: Any, user_with_role: Any, org: Any, role: str, read: bool, write: bool,
                     delete: bool) -> None:
    board = SavedDashboardFactory(organization=org)
    client = api_client(user=user_with_role(role))
    assert client.get(URL).status_code == _status(read, 200)
    assert client.get(f"{URL}/{board.public_id}").status_code == _status(read, 200)
    assert client.post(URL, {"name": "New", "widgets": [widget()]}, format="json").status_code == _status(write, 201)
    assert client.patch(f"{URL}/{board.public_id}", {"name": "Renamed"},
                        format="json").status_code == _status(write, 200)
    assert client.delete(f"{URL}/{board.public_id}").status_code == _status(delete, 204)
    assert SavedDashboard.objects.filter(pk=board.pk).exists() is not delete
    if not write:
        assert SavedDashboard.objects.count() == 1 and not AuditEvent.objects.filter(action__startswith="dashboard")


@pytest.mark.parametrize(("scope", "read", "write"), [
    ("ingest", False, False), ("read", True, False), ("config", True, True),
])
def test_token_scopes(api_client: Any, make_token: Any, org: Any, scope: str, read: bool, write: bool) -> None:
    board = SavedDashboardFactory(organization=org)
    client = api_client(token=make_token(scope)[1])
    assert client.get(URL).status_code == _status(read, 200)
    assert client.get(f"{URL}/{board.public_id}").status_code == _status(read, 200)
    assert client.post(URL, {"name": "Code", "widgets": [widget()]}, format="json").status_code == _status(write, 201)
    assert client.put(f"{URL}/{board.public_id}", {"name": "Code 2", "widgets": []},
                      format="json").status_code == _status(write, 200)
    assert client.delete(f"{URL}/{board.public_id}").status_code == _status(write, 204)
    assert SavedDashboard.objects.filter(pk=board.pk).exists() is not write
    if write:
        event = AuditEvent.objects.get(action="dashboard.created")
        assert event.actor_token_id is not None


def test_anonymous_is_refused(api_client: Any, org: Any) -> None:
    assert api_client().get(URL).status_code in (401, 403)


@pytest.mark.parametrize("caller", ["owner", "config_token"])
def test_other_org_gets_404(api_client: Any, other_org_user: Any, make_token: Any, other_org: Any, org: Any,
                            caller: str) -> None:
    board = SavedDashboardFactory(organization=org, name="Ours")
    client = (api_client(user=other_org_user) if caller == "owner"
              else api_client(token=make_token("config", organization=other_org)[1]))
    detail = f"{URL}/{board.public_id}"
    assert client.get(detail).status_code == 404
    assert client.put(detail, {"name": "Theirs", "widgets": []}, format="json").status_code == 404
    assert client.patch(detail, {"name": "Theirs"}, format="json").status_code == 404
    assert client.delete(detail).status_code == 404
    assert _rows(client.get(URL).json()) == []
    board.refresh_from_db()
    assert board.name == "Ours"
