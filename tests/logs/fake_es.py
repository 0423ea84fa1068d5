"""A stand-in Elasticsearch for the tests (no server can be installed here): a threaded HTTP server on
loopback that records every request and answers like Elasticsearch 8 -- the product header the Python
client insists on, bulk item statuses, index listings, deletes, _delete_by_query tasks and _search hits
the test chooses. ``fail`` makes every answer a 503, as an overloaded cluster would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]


@dataclass
class FakeElasticsearch:
    """What the server received and what it will answer."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    indices: list[str] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if method is None or r.method == method]

    def find(self, method: str, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]


def _handler(state: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, body: Any, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, url.path, parse_qs(url.query), body)
            state.requests.append(request)
            if state.fail:
                self._reply({"error": {"type": "unavailable", "reason": "fake outage"}, "status": 503}, 503)
            elif url.path.endswith("/_bulk"):
                items = []
                for line in request.ndjson()[::2]:
                    action, meta = next(iter(line.items()))
                    items.append({action: {**meta, "status": 201, "result": "created"}})
                self._reply({"took": 1, "errors": False, "items": items})
            elif url.path.endswith("/_search"):
                self._reply({"took": 1, "timed_out": False, "hits": {"hits": state.hits}})
            elif url.path.endswith("/_delete_by_query"):
                self._reply({"task": "fake:1"})
            elif self.command == "GET":
                self._reply({name: {"aliases": {}, "settings": {}} for name in state.indices})
            else:
                self._reply({"acknowledged": True})

        do_GET = do_PUT = do_POST = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    return Handler


@pytest.fixture(name="fake_es")
def fake_es_fixture(settings: Any) -> Iterator[FakeElasticsearch]:
    """A running fake, with ``ELASTICSEARCH_URL`` pointing at it."""
    state = FakeElasticsearch()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    settings.ELASTICSEARCH_URL = state.url
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
