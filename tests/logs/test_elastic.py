"""The Elasticsearch-compatible doors: ``_bulk`` replies in Elasticsearch's shape with a status per item,
the handshakes shippers make first, and ``/`` serving both shippers (version JSON) and browsers (home)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.logs.conftest import basic, bulk_body, search

pytestmark = pytest.mark.django_db


def post_bulk(client: Client, token: str, body: str, path: str = "/_bulk") -> Any:
    return client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=basic(token))


@pytest.mark.parametrize("path", ["/_bulk", "/api/v1/logs/_bulk", "/fiber-logs/_bulk"])
def test_bulk_as_rsyslog_sends_it_stores_every_line(client: Client, write_token: str, read_token: str,
                                                    path: str) -> None:
    docs = [{"@timestamp": "2026-12-04T10:00:00.000000+00:00", "host": "gw", "severity": "err", "program": "sshd",
             "message": f"Failed password {n}"} for n in range(3)]
    response = post_bulk(client, write_token, bulk_body(*docs, legacy_type=True), path)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["errors"] is False and isinstance(data["took"], int)
    assert [item["index"]["status"] for item in data["items"]] == [201, 201, 201]
    assert response["X-Elastic-Product"] == "Elasticsearch"
    found = search(client, read_token, q="password", level="error", start="2026-12-04T00:00:00Z").json()["results"]
    assert len(found) == 3 and {e["program"] for e in found} == {"sshd"}


def test_bulk_reports_the_bad_item_and_stores_the_rest(client: Client, write_token: str, read_token: str) -> None:
    body = bulk_body({"message": "good one"}, "{broken", {"message": "bad level", "level": "purple"},
                     {"message": "good two"}, action="create")
    body += json.dumps({"delete": {"_id": "1"}}) + "\n"
    data = post_bulk(client, write_token, body).json()
    assert data["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in data["items"]]
    assert statuses == [201, 400, 400, 201, 400]
    assert list(data["items"][0]) == ["create"] and list(data["items"][4]) == ["delete"]
    assert data["items"][1]["create"]["error"]["reason"].startswith("line 4: invalid JSON")
    assert "append-only" in data["items"][4]["delete"]["error"]["reason"]
    assert {e["message"] for e in search(client, read_token).json()["results"]} == {"good one", "good two"}


def test_a_malformed_action_line_fails_the_request_like_elasticsearch(client: Client, write_token: str) -> None:
    response = post_bulk(client, write_token, '{"message": "no action"}\n')
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid"
    assert "line 1: malformed action line" in response.json()["error"]["reason"]


def test_bulk_with_a_wrong_password_is_401_in_elasticsearch_shape(client: Client) -> None:
    response = post_bulk(client, "fst_nope", bulk_body({"message": "x"}))
    assert response.status_code == 401
    assert response.json()["status"] == 401 and "Basic" in response["WWW-Authenticate"]


def test_bulk_with_a_read_token_is_403(client: Client, read_token: str) -> None:
    assert post_bulk(client, read_token, bulk_body({"message": "x"})).status_code == 403


def test_handshakes(client: Client) -> None:
    assert client.head("/_cat/health").status_code == 200
    assert "green" in client.get("/_cat/health").content.decode()
    assert client.get("/_cluster/health").json()["status"] == "green"
    assert client.get("/_license").json()["license"]["status"] == "active"


@pytest.mark.parametrize("headers", [{"HTTP_ACCEPT": "*/*"}, {"HTTP_ACCEPT": "application/json"},
                                     {"HTTP_ACCEPT": "text/html", "HTTP_AUTHORIZATION": "Basic eDp5"},
                                     {"HTTP_USER_AGENT": "Elastic-filebeat/8.11.0 (linux; amd64)"},
                                     {"HTTP_USER_AGENT": "Vector/0.34.1 (x86_64-unknown-linux-gnu)"},
                                     {"HTTP_USER_AGENT": "Go-http-client/1.1"}])
def test_root_answers_the_version_to_shippers(client: Client, headers: dict[str, str]) -> None:
    response = client.get("/", **headers)
    assert response.status_code == 200
    assert response.json()["version"]["number"] == "8.11.0"
    assert response.json()["tagline"] == "You Know, for Search"


@pytest.mark.parametrize("headers", [
    {"HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
     "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
    {},  # no Accept, no agent: not a shipper either
])
def test_root_keeps_the_page_for_browsers(client: Client, owner: Any, headers: dict[str, str]) -> None:
    assert client.get("/", **headers)["Location"].startswith("/accounts/login")
    client.force_login(owner)
    assert client.get("/", **headers)["Location"] == "/acme/"


def test_the_written_reply_is_what_json_dumps_gives() -> None:
    """The bulk reply's fast path (no filter_path) writes the items from a template; it must be byte for
    byte the compact JSON of the item dicts, ids and index names with quotes and non-ASCII included."""
    from apps.logs.doors import Outcome
    from apps.logs.elastic import encoded_items, reply_items
    from apps.logs.intake import Item

    items = [Item("line 2", {}, action="index", index="fiber-logs"), Item("line 4", {}, action="create"),
             Item("line 6", {}, action="create", index='we"ird-é', doc_id='id "7" ü'),
             Item("line 8", None, "bad", action="update", index="fiber-logs", doc_id="")]
    outcome = Outcome(items, errors={3: 'line 8: logs are append-only "update"'})
    expected = json.dumps(reply_items(outcome, "from-path"), separators=(",", ":"))
    assert "[" + encoded_items(outcome, "from-path") + "]" == expected


def test_bulk_reply_bytes_are_compact_json(client: Client, write_token: str) -> None:
    response = post_bulk(client, write_token, bulk_body({"message": "a"}, {"message": "b", "level": "purple"}))
    text = response.content.decode()
    assert text.startswith('{"took":') and '"errors":true,"items":[{"index":{"_index":"fiber-logs","_id":"0"' in text
    assert response["Content-Type"] == "application/json" and response["X-Elastic-Product"] == "Elasticsearch"
    assert json.loads(text)["items"][1]["index"]["status"] == 400
