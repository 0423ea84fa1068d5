"""Every ingest door: no token -> 401, read token -> 403, and one organization never sees another's data."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from apps.metrics.models import Series
from apps.organizations.models import AgentToken
from tests.metrics.factories import post, sample_count

pytestmark = pytest.mark.django_db

NOW_S = int(time.time())
DOORS = [
    ("/write?precision=s", f"a,host=h v=1 {NOW_S}", "text/plain"),
    ("/api/v2/write?precision=s", f"a,host=h v=1 {NOW_S}", "text/plain"),
    ("/api/v1/write?precision=s", f"a,host=h v=1 {NOW_S}", "text/plain"),
    ("/api/v1/prom/write", b"", "application/x-protobuf"),
    ("/api/v1/collectd", "[]", "application/json"),
    ("/api/v1/metrics", '[{"name": "a", "value": 1, "host": "h"}]', "application/json"),
    ("/api/push", "{}", "application/json"),
    ("/api/v1/agents/h/metrics", '{"a": 1}', "application/json"),
]
# Ids from the path only: bodies carry the clock, and pytest-xdist workers must collect identical ids.
DOOR_IDS = [path for path, _, _ in DOORS]


@pytest.mark.parametrize(("path", "body", "content_type"), DOORS, ids=DOOR_IDS)
def test_door_without_token_is_401(path: str, body: Any, content_type: str) -> None:
    response = post(path, body, content_type=content_type)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    challenges = response["WWW-Authenticate"]
    assert challenges.startswith('Basic realm="fiberstack"')  # libcurl's "any auth" needs a Basic challenge
    assert 'Bearer realm="fiberstack"' in challenges


@pytest.mark.parametrize(("path", "body", "content_type"), DOORS, ids=DOOR_IDS)
def test_door_with_bad_token_is_401(path: str, body: Any, content_type: str) -> None:
    assert post(path, body, token="fst_0000_nope", content_type=content_type).status_code == 401


@pytest.mark.parametrize(("path", "body", "content_type"), DOORS, ids=DOOR_IDS)
def test_door_with_read_token_is_403(path: str, body: Any, content_type: str, read_token: str) -> None:
    response = post(path, body, token=read_token, content_type=content_type)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_revoked_token_is_401(make_token: Any) -> None:
    from apps.organizations.services import revoke_token

    token, plaintext = make_token(AgentToken.Scope.WRITE)
    revoke_token(token=token, actor=None)
    assert post("/api/v1/metrics", '[{"name": "a", "value": 1}]', token=plaintext,
                content_type="application/json").status_code == 401


def test_data_lands_in_the_token_organization_only(org: Any, other_org: Any, make_token: Any) -> None:
    _, mine = make_token(AgentToken.Scope.WRITE)
    _, theirs = make_token(AgentToken.Scope.WRITE, organization=other_org)
    body = json.dumps([{"name": "shared_name", "value": 1, "host": "same-host"}])
    assert post("/api/v1/metrics", body, token=mine, content_type="application/json").status_code == 200
    assert post("/api/v1/metrics", body, token=theirs, content_type="application/json").status_code == 200
    ours = Series.objects.get(organization=org, name="shared_name")
    other = Series.objects.get(organization=other_org, name="shared_name")
    assert ours.id != other.id
    assert ours.host.organization_id == org.pk and other.host.organization_id == other_org.pk
    assert sample_count(org) == 1 and sample_count(other_org) == 1


def test_session_cookie_is_not_a_credential(client: Any, owner: Any) -> None:
    client.force_login(owner)
    response = client.post("/api/v1/metrics", '[{"name": "a", "value": 1}]', content_type="application/json")
    assert response.status_code == 401
