"""Elasticsearch copies (apps/logs/es.py, apps/alerts/search.py). No Elasticsearch server can be installed
here, so the real client talks to a stand-in that records what it receives and answers like Elasticsearch 8
(tests/logs/fake_es.py): document preparation, the index templates of logs, events and alerts, the copies
queued after commit, search served from Elasticsearch, and the fallback -- with Elasticsearch failing or
unreachable, ingest and search are unaffected."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from elasticsearch import ConnectionError as ElasticsearchConnectionError

from apps.alerts.services.lifecycle import acknowledge_alert, record_outcomes
from apps.logs import es
from apps.logs.models import LogEntry, LogEvent
from apps.logs.services import record_host_event
from tests.alerts.factories import AlertRuleFactory
from tests.alerts.factories_lifecycle import breach
from tests.logs.conftest import post_logs, search
from tests.logs.fake_es import FakeElasticsearch, fake_es_fixture  # noqa: F401 (fixture)
from tests.logs.shippers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_templates() -> None:
    es._TEMPLATE_INSTALLED.clear()


@pytest.mark.parametrize(("family", "pattern", "keywords"), [
    ("logs", "fiber-logs-*", ["host", "level", "service", "program", "trace_id"]),
    ("events", "fiber-events-*", ["host", "kind", "level", "source"]),
    ("alerts", "fiber-alerts-*", ["rule", "host", "state", "severity", "fingerprint", "id"]),
])
def test_each_family_has_a_template_for_its_daily_indices(family: str, pattern: str, keywords: list[str]) -> None:
    template = es.FAMILIES[family].template()
    assert template["index_patterns"] == [pattern] and template["priority"] == 200
    assert template["template"]["settings"]["number_of_shards"] == 1
    properties = template["template"]["mappings"]["properties"]
    assert all(properties[name] == {"type": "keyword"} for name in keywords), properties
    assert properties["time"]["type"] == "date" and properties["time_us"] == {"type": "long"}
    assert properties["organization_id"] == {"type": "integer"}


def test_the_logs_mapping_keeps_context_and_stacks_unindexed() -> None:
    properties = es.LOGS.template()["template"]["mappings"]["properties"]
    assert properties["message"]["type"] == "text"
    assert properties["context"] == {"type": "object", "enabled": False}
    assert properties["exception_stack"] == {"type": "text", "index": False}


def test_index_prefixes_come_from_settings(settings: Any) -> None:
    settings.FIBERSTACK_EVENTS_ES_INDEX = "acme-events"
    assert es.EVENTS.template()["index_patterns"] == ["acme-events-*"]
    assert es.EVENTS.index_for(dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))) \
        == "acme-events-2026.12.05"
    assert es.EVENTS.day_of("acme-events-2026.12.05") == dt.date(2026, 12, 5)
    assert es.EVENTS.day_of("acme-events-latest") is None and es.EVENTS.day_of("fiber-logs-2026.12.05") is None


def test_a_stored_entry_prepares_into_its_document(client: Client, org: Any, write_token: str) -> None:
    post_logs(client, write_token, [{"@timestamp": "2026-12-04T10:00:00.123456Z", "message": "boom", "level": "err",
                                     "host": "web-1", "trace_id": "t1", "user": "ann"}])
    entry = LogEntry.objects.get(organization_id=org.pk)
    document = es.LogEntryDocument()
    source = document.prepare(entry)
    assert source["message"] == "boom" and source["level"] == "error" and source["host"] == "web-1"
    assert source["trace_id"] == "t1" and source["context"] == {"user": "ann"}
    assert source["id"] == entry.id and source["time_us"] == 1796378400123456
    action = document._prepare_action(entry, "index")
    assert action["_index"] == "fiber-logs-2026.12.04"
    assert action["_id"] == f"{org.pk}-{entry.id}"


def test_a_stored_event_prepares_into_its_document(org: Any) -> None:
    record_host_event(organization_id=org.pk, kind="deploy", title="api v42", host="web-1", source="ci",
                      context={"sha": "1a2b"}, when=dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC))
    event = LogEvent.objects.get(organization_id=org.pk)
    action = es.EventDocument()._prepare_action(event, "index")
    assert action["_index"] == "fiber-events-2026.12.03" and action["_id"] == f"{org.pk}-{event.id}"
    source = action["_source"]
    assert (source["kind"], source["title"], source["host"], source["source"]) == ("deploy", "api v42", "web-1", "ci")
    assert source["context"] == {"sha": "1a2b"}


def test_ingest_copies_committed_entries_to_elasticsearch(client: Client, org: Any, write_token: str,
                                                          fake_es: FakeElasticsearch,
                                                          django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_logs(client, write_token, [{"message": "first"}, {"message": "second", "level": "warn"}])
    assert response.status_code == 200
    assert [path for _, path in fake_es.calls()] == ["/_index_template/fiber-logs", "/_bulk"]
    template = fake_es.requests[0].json()
    assert template["index_patterns"] == ["fiber-logs-*"]
    lines = fake_es.requests[1].ndjson()
    assert {s["message"] for s in lines[1::2]} == {"first", "second"}
    ids = {str(i) for i in LogEntry.objects.filter(organization_id=org.pk).values_list("id", flat=True)}
    assert {action["index"]["_id"].split("-")[1] for action in lines[::2]} == ids
    assert all(action["index"]["_index"].startswith("fiber-logs-20") for action in lines[::2])


def test_events_are_copied_after_commit(client: Client, org: Any, write_token: str, fake_es: FakeElasticsearch,
                                        django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_logs(client, write_token, [{"kind": "deploy", "title": "api v42", "host": "web-1"}],
                             path="/api/v1/events")
    assert response.status_code == 200, response.content
    assert [path for _, path in fake_es.calls()] == ["/_index_template/fiber-events", "/_bulk"]
    action, source = fake_es.requests[1].ndjson()
    event = LogEvent.objects.get(organization_id=org.pk)
    assert action["index"]["_id"] == f"{org.pk}-{event.id}"
    assert action["index"]["_index"] == es.EVENTS.index_for(event.time)
    assert (source["kind"], source["title"], source["organization_id"]) == ("deploy", "api v42", org.pk)


def test_alert_transitions_copy_the_alert(org: Any, fake_es: FakeElasticsearch, settings: Any,
                                          django_capture_on_commit_callbacks: Any, owner: Any) -> None:
    settings.FIBERSTACK_ALERT_CONSUMERS = ["apps.alerts.search.consume"]
    rule = AlertRuleFactory(organization=org, name="cpu high")
    with django_capture_on_commit_callbacks(execute=True):
        alert = record_outcomes(rule=rule, outcomes=[breach(host="web-1")], at=timezone.now(), complete=True)[0]
    assert fake_es.find("PUT", "/_index_template/fiber-alerts")
    # The transition's event goes to fiber-events-*, the alert itself to fiber-alerts-*.
    bulks = [r for r in fake_es.requests if r.path == "/_bulk" and "fiber-alerts-" in r.body.decode()]
    assert len(bulks) == 1
    action, source = bulks[0].ndjson()
    assert action["index"]["_id"] == str(alert.public_id)
    assert action["index"]["_index"] == es.FAMILIES["alerts"].index_for(alert.created_at)
    assert (source["rule"], source["state"], source["organization_id"]) == ("cpu high", "firing", org.pk)
    with django_capture_on_commit_callbacks(execute=True):
        acknowledge_alert(alert=alert, actor=owner)
    last = [r for r in fake_es.requests if r.path == "/_bulk" and "fiber-alerts-" in r.body.decode()][-1].ndjson()
    assert last[0]["index"]["_id"] == str(alert.public_id) and last[1]["state"] == "acknowledged"


def test_without_elasticsearch_url_nothing_is_queued(client: Client, org: Any, write_token: str, settings: Any,
                                                     django_capture_on_commit_callbacks: Any) -> None:
    settings.ELASTICSEARCH_URL = ""
    with django_capture_on_commit_callbacks() as callbacks:
        post_logs(client, write_token, [{"message": "pg only"}])
    assert len(callbacks) == 1  # the live tail only
    assert LogEntry.objects.filter(organization_id=org.pk).count() == 1


def _hit(row_id: int, time: dt.datetime, message: str, **extra: Any) -> dict[str, Any]:
    source = {"id": row_id, "time_us": es.micros(time), "message": message, "host": "web-1", "level": "info",
              "service": "", "program": "", "context": {}, **extra}
    return {"_index": es.LOGS.index_for(time), "_id": f"1-{row_id}", "_source": source,
            "sort": [source["time_us"], row_id]}


def test_search_is_served_from_elasticsearch(client: Client, org: Any, read_token: str,
                                             fake_es: FakeElasticsearch) -> None:
    now = timezone.now().replace(microsecond=654321)
    fake_es.hits = [{**_hit(9, now, "disk timeout on sda"), "highlight": {"message": ["disk \x02timeout\x03 <b>"]}},
                    _hit(8, now - dt.timedelta(seconds=1), "timeout again")]
    response = search(client, read_token, q='timeout or "disk full" -ok', host="web-1,web-2", level="warning+",
                      limit=1)
    assert response.status_code == 200
    data = response.json()
    assert [r["id"] for r in data["results"]] == ["9"]
    assert data["results"][0]["highlight"] == "disk <mark>timeout</mark> &lt;b&gt;"
    assert data["results"][0]["time"] == now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    (sent,) = fake_es.find("POST", "/fiber-logs-*/_search")
    body = sent.json()
    assert body["size"] == 2 and body["sort"] == [{"time_us": {"order": "desc"}}, {"id": {"order": "desc"}}]
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"organization_id": org.pk}} in filters
    assert {"terms": {"host": ["web-1", "web-2"]}} in filters
    assert {"terms": {"level": ["emergency", "alert", "critical", "error", "warning"]}} in filters
    query = body["query"]["bool"]["must"][0]["simple_query_string"]
    assert query["query"] == 'timeout | "disk full" -ok' and query["default_operator"] == "and"
    # The next page continues after the last row shown, exact to the microsecond.
    search(client, read_token, q="timeout", cursor=data["next"])
    assert fake_es.find("POST", "/fiber-logs-*/_search")[-1].json()["search_after"] == [es.micros(now), 9]


def test_events_search_is_served_from_elasticsearch(client: Client, org: Any, read_token: str,
                                                    fake_es: FakeElasticsearch) -> None:
    now = timezone.now()
    fake_es.hits = [{"_source": {"id": 3, "time_us": es.micros(now), "kind": "deploy", "title": "v42", "host": "",
                                 "level": "info", "message": "", "source": "ci", "context": {"sha": "1"}}}]
    response = client.get("/api/v1/events", {"kind": "deploy"}, HTTP_AUTHORIZATION=f"Bearer {read_token}")
    assert response.json()["results"][0]["title"] == "v42"
    body = fake_es.find("POST", "/fiber-events-*/_search")[0].json()
    assert {"terms": {"kind": ["deploy"]}} in body["query"]["bool"]["filter"]


def test_a_failing_elasticsearch_search_falls_back_to_postgresql(client: Client, org: Any, write_token: str,
                                                                  read_token: str, fake_es: FakeElasticsearch,
                                                                  caplog: Any) -> None:
    post_logs(client, write_token, [{"message": "kept in postgres"}])
    fake_es.fail = True
    response = search(client, read_token, q="postgres")
    assert response.status_code == 200
    assert [r["message"] for r in response.json()["results"]] == ["kept in postgres"]
    assert fake_es.find("POST", "/fiber-logs-*/_search")  # it was asked first
    assert "answered from PostgreSQL" in caplog.text


def test_elasticsearch_unreachable_ingest_and_search_still_work(client: Client, org: Any, write_token: str,
                                                                read_token: str, settings: Any,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_logs(client, write_token, [{"message": "kept in postgres"}])
    assert response.status_code == 200 and len(callbacks) == 2  # live tail + the queued copy
    assert search(client, read_token, q="postgres").json()["results"][0]["message"] == "kept in postgres"
    entry = LogEntry.objects.get(organization_id=org.pk)
    with pytest.raises(ElasticsearchConnectionError):  # what the task retries with backoff
        es.index_entries(organization_id=org.pk, ids=[entry.id], start=entry.time, end=entry.time)
