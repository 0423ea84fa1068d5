"""No body makes the JSON or bulk door answer 5xx, and what a door says it stored is what search finds
(hypothesis, end to end through HTTP and PostgreSQL)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.logs.conftest import basic

pytestmark = pytest.mark.django_db

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
           | st.floats(allow_nan=True) | st.text(max_size=30))
KEYS = st.sampled_from(["message", "msg", "level", "severity", "time", "@timestamp", "host", "service", "program",
                        "trace_id", "exception", "log", "x", "host.name", "\x00"]) | st.text(max_size=8)
DOCS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=12)
ACTIONS = st.sampled_from(['{"index":{}}', '{"create":{"_index":"x","_type":"events"}}', '{"delete":{"_id":1}}',
                           '{"update":{}}', "{}", "[", ""])


def _entries(organization_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logs_entry WHERE organization_id = %s", [organization_id])
        return int(cursor.fetchone()[0])


def test_random_json_bodies_never_5xx_and_accepted_counts_are_stored(client: Client, org: Any,
                                                                      write_token: str) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(docs=st.lists(DOCS, max_size=6), shape=st.sampled_from(["array", "ndjson", "raw"]), gz=st.booleans(),
           raw=st.binary(max_size=200))
    def check(docs: list[Any], shape: str, gz: bool, raw: bytes) -> None:
        if shape == "array":
            data = json.dumps(docs).encode()
        elif shape == "ndjson":
            data = "\n".join(json.dumps(doc) for doc in docs).encode()
        else:
            data = raw
        if gz:
            data = gzip.compress(data)
        before = _entries(org.pk)
        response = client.post("/api/v1/logs", data=data, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {write_token}",
                               HTTP_CONTENT_ENCODING="gzip" if gz else "")
        assert response.status_code < 500, response.content
        body = response.json()
        if response.status_code in (200, 400) and "accepted" in body:
            assert _entries(org.pk) - before == body["accepted"]
            assert all(r["location"] and r["reason"] for r in body["rejected"])
        else:
            assert body["error"]

    check()


def test_random_bulk_bodies_never_5xx_and_items_match_actions(client: Client, org: Any, write_token: str) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(pairs=st.lists(st.tuples(ACTIONS, DOCS.map(json.dumps) | st.text(max_size=20)), max_size=6))
    def check(pairs: list[tuple[str, str]]) -> None:
        body = "".join(f"{action}\n{doc}\n" for action, doc in pairs)
        before = _entries(org.pk)
        response = client.post("/_bulk", data=body, content_type="application/json",
                               HTTP_AUTHORIZATION=basic(write_token))
        assert response.status_code < 500, response.content
        data = response.json()
        if response.status_code == 200:
            created = sum(1 for item in data["items"] if next(iter(item.values()))["status"] == 201)
            assert _entries(org.pk) - before == created
            assert data["errors"] == (created != len(data["items"]))
        else:
            assert data["status"] == response.status_code and data["error"]["reason"]

    check()


@pytest.mark.parametrize("doc", ['{"message": "half \\ud800 pair"}', '{"message": "x", "k\\ud800": "\\udfff"}',
                                 '{"message": "nul \\u0000 inside", "\\u0000": "\\u0000"}',
                                 '{"message": "deep", "c": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_awkward_json_is_stored_or_refused_never_5xx(client: Client, write_token: str, doc: str) -> None:
    response = client.post("/api/v1/logs", data=doc, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {write_token}")
    assert response.status_code in (200, 400), response.content


def test_random_search_parameters_never_5xx(client: Client, read_token: str) -> None:
    names = st.sampled_from(["q", "host", "level", "service", "program", "start", "end", "cursor", "limit", "kind"])

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=st.dictionaries(names, st.text(max_size=20) | st.sampled_from(["-1", "0", "1e400", "nan",
                                                                               "2026-13-01", "err+", "!!", '"a'])),
           path=st.sampled_from(["/api/v1/logs", "/api/v1/events"]))
    def check(params: dict[str, str], path: str) -> None:
        response = client.get(path, params, HTTP_AUTHORIZATION=f"Bearer {read_token}")
        assert response.status_code in (200, 400), response.content
        if response.status_code == 400:
            assert response.json()["parameter"] in params

    check()
