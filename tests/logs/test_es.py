"""Elasticsearch copies of log entries (apps/logs/es.py). No Elasticsearch server can be installed here,
so the client talks to a small stand-in that records what it receives and answers like Elasticsearch
8 (product header, bulk item statuses): document preparation, the index template, the Celery indexing
after commit, and the fallback -- with Elasticsearch unreachable, ingest and search are unaffected."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from elasticsearch import ConnectionError as ElasticsearchConnectionError

from apps.logs import es
from apps.logs.models import LogEntry
from tests.logs.conftest import post_logs, search
from tests.logs.shippers import free_port

pytestmark = pytest.mark.django_db


class FakeElasticsearch(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def _reply(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.command, self.path, body))
        if self.path.startswith("/_bulk"):
            actions = [json.loads(line) for line in body.decode().splitlines()[::2]]
            self._reply({"took": 1, "errors": False, "items": [
                {"index": {**action["index"], "status": 201, "result": "created"}} for action in actions]})
        else:
            self._reply({"acknowledged": True})

    do_PUT = do_POST = _handle

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def fake_es(settings: Any) -> Iterator[list[tuple[str, str, bytes]]]:
    FakeElasticsearch.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeElasticsearch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{server.server_port}"
    try:
        yield FakeElasticsearch.received
    finally:
        server.shutdown()
        server.server_close()


def test_the_index_template_maps_daily_indices() -> None:
    template = es.index_template()
    assert template["index_patterns"] == ["fiberstack-logs-*"]
    properties = template["template"]["mappings"]["properties"]
    assert properties["message"]["type"] == "text"
    assert properties["level"] == {"type": "keyword"} and properties["host"] == {"type": "keyword"}
    assert properties["time"]["type"] == "date"
    assert properties["context"] == {"type": "object", "enabled": False}
    assert properties["exception_stack"] == {"type": "text", "index": False}


def test_a_stored_entry_prepares_into_its_document(client: Client, org: Any, write_token: str) -> None:
    post_logs(client, write_token, [{"@timestamp": "2026-12-04T10:00:00Z", "message": "boom", "level": "err",
                                     "host": "web-1", "trace_id": "t1", "user": "ann"}])
    entry = LogEntry.objects.get(organization_id=org.pk)
    document = es.LogEntryDocument()
    source = document.prepare(entry)
    assert source["message"] == "boom" and source["level"] == "error" and source["host"] == "web-1"
    assert source["trace_id"] == "t1" and source["context"] == {"user": "ann"}
    action = document._prepare_action(entry, "index")
    assert action["_index"] == "fiberstack-logs-2026.12.04"
    assert action["_id"] == f"{org.pk}-{entry.id}"


def test_ingest_copies_committed_entries_to_elasticsearch(client: Client, org: Any, write_token: str,
                                                          fake_es: list[tuple[str, str, bytes]],
                                                          django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_logs(client, write_token, [{"message": "first"}, {"message": "second", "level": "warn"}])
    assert response.status_code == 200
    paths = [(method, path.split("?")[0]) for method, path, _ in fake_es]
    assert paths == [("PUT", "/_index_template/fiberstack-logs"), ("PUT", "/_bulk")] or paths == [
        ("PUT", "/_index_template/fiberstack-logs"), ("POST", "/_bulk")]
    lines = [json.loads(line) for line in fake_es[1][2].decode().splitlines()]
    sources = lines[1::2]
    assert {s["message"] for s in sources} == {"first", "second"}
    ids = {str(i) for i in LogEntry.objects.filter(organization_id=org.pk).values_list("id", flat=True)}
    assert {action["index"]["_id"].split("-")[1] for action in lines[::2]} == ids


def test_without_elasticsearch_url_nothing_is_sent_and_ids_come_from_the_table(
        client: Client, org: Any, write_token: str, settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    settings.ELASTICSEARCH_URL = ""
    with django_capture_on_commit_callbacks() as callbacks:
        post_logs(client, write_token, [{"message": "pg only"}])
    assert len(callbacks) == 1  # the live tail only
    assert LogEntry.objects.filter(organization_id=org.pk).count() == 1


def test_elasticsearch_unreachable_ingest_and_search_still_work(client: Client, org: Any, write_token: str,
                                                                read_token: str, settings: Any,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        response = post_logs(client, write_token, [{"message": "kept in postgres"}])
    assert response.status_code == 200
    assert search(client, read_token, q="postgres").json()["results"][0]["message"] == "kept in postgres"
    entry = LogEntry.objects.get(organization_id=org.pk)
    with pytest.raises(ElasticsearchConnectionError):  # what the task retries with backoff
        es.index_entries(organization_id=org.pk, ids=[entry.id], start=entry.time, end=entry.time)
