"""The logs page and the events panel of a host's detail page, through Django's test client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from apps.logs.services import record_host_event
from tests.hosts.factories import HostFactory
from tests.logs.conftest import post_logs

pytestmark = pytest.mark.django_db


def test_the_page_searches_with_filters_and_highlights(client: Client, owner: Any, write_token: str) -> None:
    post_logs(client, write_token, [{"message": "payment <b>failed</b> for order", "level": "error", "host": "api-1"},
                                    {"message": "payment ok", "level": "info", "host": "api-1"}])
    client.force_login(owner)
    response = client.get("/acme/logs/", {"q": "failed", "level": "error+", "host": "api-1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "payment &lt;b&gt;<mark>failed</mark>&lt;/b&gt; for order" in page
    assert "payment ok" not in page
    assert 'data-ws-path="/ws/acme/logs/?q=failed&amp;host=api-1&amp;level=error%2B"' in page


def test_a_bad_filter_is_a_400_page_naming_it(client: Client, member_ro: Any) -> None:
    client.force_login(member_ro)
    response = client.get("/acme/logs/", {"start": "yesterday-ish"})
    assert response.status_code == 400 and "start:" in response.content.decode()


def test_other_organizations_and_anonymous_users(client: Client, other_org_user: Any) -> None:
    assert client.get("/acme/logs/")["Location"].startswith("/accounts/login")
    client.force_login(other_org_user)
    assert client.get("/acme/logs/").status_code == 404


def test_the_page_shows_only_this_organizations_entries(client: Client, owner: Any, other_org: Any,
                                                         make_token: Any) -> None:
    _, other_token = make_token("ingest", organization=other_org)
    post_logs(client, other_token, [{"message": "globex secret"}])
    client.force_login(owner)
    assert "globex secret" not in client.get("/acme/logs/").content.decode()


def test_host_detail_shows_the_hosts_events(client: Client, org: Any, owner: Any, other_org: Any) -> None:
    host = HostFactory(organization=org, name="web-1")
    record_host_event(organization_id=org.pk, kind="deploy", title="api v42 deployed", host="web-1")
    record_host_event(organization_id=org.pk, kind="deploy", title="elsewhere", host="web-2")
    record_host_event(organization_id=other_org.pk, kind="deploy", title="globex web-1", host="web-1")
    client.force_login(owner)
    page = client.get(f"/acme/hosts/{host.public_id}/").content.decode()
    assert "api v42 deployed" in page
    assert "elsewhere" not in page and "globex web-1" not in page
    assert json.dumps("?host=web-1")[1:-1] in page


def test_the_page_ignores_parameters_it_does_not_offer(client: Client, member_ro: Any) -> None:
    client.force_login(member_ro)
    assert client.get("/acme/logs/", {"kind": "deploy", "limit": "5"}).status_code == 200
