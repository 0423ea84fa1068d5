"""``POST /api/v1/logs`` and ``GET /api/v1/logs`` end to end: JSON array, NDJSON, per-line errors, levels,
scopes, limits, and organization isolation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.logs.conftest import ndjson, post_logs, search

pytestmark = pytest.mark.django_db


def test_a_json_array_is_stored_and_found_newest_first(client: Client, write_token: str, read_token: str) -> None:
    now = timezone.now()
    entries = [{"time": (now - dt.timedelta(seconds=s)).isoformat(), "message": f"request {s} done",
                "host": "web-1", "level": "info", "service": "api"} for s in range(3)]
    response = post_logs(client, write_token, entries)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "rejected": []}
    found = search(client, read_token, q="done").json()
    assert [e["message"] for e in found["results"]] == ["request 0 done", "request 1 done", "request 2 done"]
    assert found["next"] is None
    assert found["results"][0]["highlight"] == "request 0 <mark>done</mark>"


def test_ndjson_with_a_bad_line_stores_the_others_and_names_the_line(client: Client, write_token: str,
                                                                     read_token: str) -> None:
    body = ndjson({"message": "first"}) + "{not json\n" + ndjson({"message": "third", "level": "loud"},
                                                                 {"message": "fourth", "level": "err"})
    response = post_logs(client, write_token, body, content_type="application/x-ndjson")
    assert response.status_code == 400
    data = response.json()
    assert data["accepted"] == 2
    assert [r["location"] for r in data["rejected"]] == ["line 2", "line 3"]
    assert "invalid JSON" in data["rejected"][0]["reason"]
    assert "level 'loud'" in data["rejected"][1]["reason"]
    messages = {e["message"] for e in search(client, read_token).json()["results"]}
    assert messages == {"first", "fourth"}


@pytest.mark.parametrize(("sent", "stored"), [("err", "error"), ("3", "error"), (3, "error"), ("ERROR", "error"),
                                              ("crit", "critical"), ("FATAL", "critical"), ("warn", "warning"),
                                              ("WARNING", "warning"), (40, "error"), ("emerg", "emergency"),
                                              ("SEVERE", "critical"), ("trace", "debug"), ("notice", "notice")])
def test_levels_are_normalised(client: Client, write_token: str, read_token: str, sent: Any, stored: str) -> None:
    assert post_logs(client, write_token, [{"message": "x", "level": sent}]).status_code == 200
    results = search(client, read_token, level=stored).json()["results"]
    assert [e["level"] for e in results] == [stored]


def test_search_by_level_err_alias_and_at_least(client: Client, write_token: str, read_token: str) -> None:
    post_logs(client, write_token, [{"message": m, "level": m} for m in ("debug", "warning", "err", "crit")])
    assert {e["message"] for e in search(client, read_token, level="error").json()["results"]} == {"err"}
    assert {e["message"] for e in search(client, read_token, level="err").json()["results"]} == {"err"}
    assert {e["message"] for e in search(client, read_token, level="warning+").json()["results"]} == {
        "warning", "err", "crit"}
    bad = search(client, read_token, level="loud")
    assert bad.status_code == 400 and bad.json()["parameter"] == "level"


def test_filters_and_fields(client: Client, write_token: str, read_token: str) -> None:
    post_logs(client, write_token, [
        {"@timestamp": "2026-01-01T00:00:00Z", "message": "too old"},
        {"message": "boom", "host": {"name": "db-1"}, "service": {"name": "billing"}, "logger": "app.pay",
         "trace_id": "t-1", "request_id": "r-1", "user": "ann",
         "exception": {"type": "ValueError", "message": "bad amount", "stacktrace": "line 1\nline 2"}},
        {"message": "fine", "hostname": "db-2", "app": "billing", "programname": "cron"},
    ])
    (entry,) = search(client, read_token, host="db-1").json()["results"]
    assert entry["service"] == "billing" and entry["program"] == "app.pay"
    assert (entry["trace_id"], entry["request_id"]) == ("t-1", "r-1")
    assert (entry["exception_type"], entry["exception_message"]) == ("ValueError", "bad amount")
    assert entry["exception_stack"] == "line 1\nline 2"
    assert entry["context"] == {"user": "ann"}
    assert [e["host"] for e in search(client, read_token, service="billing", program="cron").json()["results"]] == [
        "db-2"]
    assert search(client, read_token, q="amount").json()["results"][0]["message"] == "boom"


def test_time_outside_the_window_is_refused_per_item(client: Client, write_token: str) -> None:
    response = post_logs(client, write_token, [{"time": "2001-01-01T00:00:00Z", "message": "old"},
                                               {"time": "yesterday", "message": "bad"}])
    assert response.status_code == 400
    reasons = [r["reason"] for r in response.json()["rejected"]]
    assert "outside the accepted range" in reasons[0] and "not ISO 8601" in reasons[1]


def test_cursor_pages_through_without_repeats(client: Client, write_token: str, read_token: str) -> None:
    now = timezone.now()
    post_logs(client, write_token, [{"time": (now - dt.timedelta(seconds=i)).isoformat(), "message": f"m{i}"}
                                    for i in range(25)])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = search(client, read_token, **params).json()
        seen += [e["message"] for e in page["results"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"m{i}" for i in range(25)]
    assert search(client, read_token, cursor="!!").status_code == 400


def test_highlight_escapes_html(client: Client, write_token: str, read_token: str) -> None:
    post_logs(client, write_token, [{"message": "<script>alert(1)</script> failed"}])
    (entry,) = search(client, read_token, q="failed").json()["results"]
    assert entry["highlight"] == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>failed</mark>"


@pytest.mark.parametrize("scope", ["read", "config"])
def test_a_read_or_config_token_cannot_post(client: Client, make_token: Any, scope: str) -> None:
    _, token = make_token(scope)
    response = post_logs(client, token, [{"message": "x"}])
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_an_ingest_token_cannot_search(client: Client, write_token: str) -> None:
    assert search(client, write_token).status_code == 403


def test_no_token_is_401_with_the_basic_challenge(client: Client) -> None:
    response = client.post("/api/v1/logs", data="[]", content_type="application/json")
    assert response.status_code == 401 and "Basic" in response["WWW-Authenticate"]


def test_another_organization_never_sees_the_entries(client: Client, write_token: str, other_org: Any,
                                                     make_token: Any, other_org_user: Any, owner: Any) -> None:
    post_logs(client, write_token, [{"message": "secret of acme"}])
    _, other_read = make_token("read", organization=other_org)
    assert search(client, other_read, q="secret").json()["results"] == []
    session = Client()
    session.force_login(other_org_user)
    assert session.get("/api/v1/logs", {"q": "secret"}).json()["results"] == []
    assert session.get("/api/v1/logs", {"q": "secret", "org": "acme"}).status_code == 404
    mine = Client()
    mine.force_login(owner)
    assert [e["message"] for e in mine.get("/api/v1/logs", {"q": "secret"}).json()["results"]] == ["secret of acme"]


def test_limits_entries_per_request_and_body_size(client: Client, write_token: str, settings: Any) -> None:
    settings.FIBERSTACK_LOGS_MAX_ENTRIES = 2
    response = post_logs(client, write_token, [{"message": "a"}] * 3)
    assert response.status_code == 400 and "limit is 2" in response.json()["error"]
    settings.FIBERSTACK_INGEST_MAX_BODY_BYTES = 100
    response = post_logs(client, write_token, [{"message": "a" * 200}])
    assert response.status_code == 413


def test_rate_limit_per_token_answers_429(client: Client, write_token: str, settings: Any) -> None:
    settings.FIBERSTACK_INGEST_RATE_SAMPLES = 3
    settings.FIBERSTACK_INGEST_RATE_WINDOW = 60
    assert post_logs(client, write_token, [{"message": "a"}] * 3).status_code == 200
    response = post_logs(client, write_token, [{"message": "a"}])
    assert response.status_code == 429 and "entries per second" in response.json()["error"]
    assert response["Retry-After"]


def test_gzip_body(client: Client, write_token: str, read_token: str) -> None:
    import gzip
    import json

    body = gzip.compress(json.dumps([{"message": "zipped"}]).encode())
    response = post_logs(client, write_token, body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert search(client, read_token, q="zipped").json()["results"]


def test_an_oversized_entry_is_refused_alone(client: Client, write_token: str, settings: Any) -> None:
    settings.FIBERSTACK_LOGS_MAX_ENTRY_BYTES = 1000
    response = post_logs(client, write_token, [{"message": "x" * 2000}, {"message": "small", "extra": "y" * 10}])
    assert response.status_code == 400
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [{"location": "item 0", "reason": "the entry is larger than 1000 characters"}]


def test_an_unreachable_database_is_a_503_with_retry_after(client: Client, write_token: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from apps.logs import services

    calls = []

    def down(*args: Any) -> None:
        calls.append(args)
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(services, "_copy", down)  # the COPY, which Django does not wrap
    response = post_logs(client, write_token, [{"message": "x"}], path="/api/v1/logs")
    assert calls and response.status_code == 503 and response["Retry-After"], response.content
    assert response.json()["code"] == "unavailable"


@pytest.mark.parametrize("bound", [3, 10, 1000])
def test_full_text_within_a_host_is_exact_whatever_the_filter_first_bound(
        client: Client, write_token: str, read_token: str, monkeypatch: pytest.MonkeyPatch, bound: int) -> None:
    from apps.logs import search as search_module

    monkeypatch.setattr(search_module, "FILTER_FIRST_ROWS", bound)
    now = timezone.now()
    entries = [{"time": (now - dt.timedelta(seconds=i)).isoformat(), "host": "web-1" if i % 3 else "web-2",
                "message": f"disk full {i}" if i % 4 == 0 else f"all good {i}"} for i in range(40)]
    post_logs(client, write_token, entries)
    expected = [f"disk full {i}" for i in range(40) if i % 4 == 0 and i % 3]
    for limit in (2, 5, 100):
        seen, cursor = [], None
        while True:
            page = search(client, read_token, q="disk full", host="web-1", limit=limit,
                          **({"cursor": cursor} if cursor else {})).json()
            seen += [e["message"] for e in page["results"]]
            assert all("<mark>disk</mark> <mark>full</mark>" in e["highlight"] for e in page["results"])
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == expected


def test_several_hosts_at_once(client: Client, write_token: str, read_token: str) -> None:
    post_logs(client, write_token, [{"message": f"from {h}", "host": h} for h in ("a", "b", "c")])
    found = search(client, read_token, host="a,c", q="from").json()["results"]
    assert sorted(e["host"] for e in found) == ["a", "c"]
    assert sorted(e["host"] for e in search(client, read_token, host=["a", "b"]).json()["results"]) == ["a", "b"]


@pytest.mark.parametrize("door", ["/api/v1/logs", "/api/v1/logs/_bulk"])
def test_non_finite_numbers_in_fields_are_kept_as_strings_not_a_500(client: Client, write_token: str,
                                                                    read_token: str, door: str) -> None:
    """Python's JSON parser reads ``Infinity``/``NaN``, which JSON has not and jsonb refuses: stored as text."""
    entry = '{"message": "odd numbers", "ratio": Infinity, "low": -Infinity, "nested": {"x": [NaN, 1.5]}}'
    body = (entry + "\n") if door == "/api/v1/logs" else '{"index": {}}\n' + entry + "\n"
    response = client.post(door, data=body, content_type="application/x-ndjson",
                           headers={"authorization": f"Bearer {write_token}"})
    assert response.status_code == 200, response.content
    [found] = search(client, read_token, q="odd").json()["results"]
    assert found["context"]["ratio"] == "Infinity" and found["context"]["low"] == "-Infinity"
    assert found["context"]["nested"] == {"x": ["NaN", 1.5]}
