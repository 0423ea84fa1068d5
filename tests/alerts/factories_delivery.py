"""Factories for the delivery tests (outbox rows with Alertmanager v4 payloads) and the real local
receivers they are delivered to: a threaded HTTP server and an aiosmtpd SMTP server (import
``receiver_fixture`` / ``smtp_server_fixture`` into a test module; they register as ``receiver`` and
``smtp_server``)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import factory
import pytest
from aiosmtpd.controller import Controller

from apps.alerts.choices import NotificationKind
from apps.alerts.models import Notification
from tests.alerts.factories import NotificationChannelFactory
from tests.organizations.factories import OrganizationFactory


def v4_payload(status: str = "firing", *, names: tuple[str, ...] = ("HighCPU",), hosts: tuple[str, ...] = ("web-1",),
               severity: str = "critical") -> dict[str, Any]:
    """An Alertmanager webhook v4 body as the lifecycle builds it: one alert per (name, host)."""
    alerts = []
    for name in names:
        for host in hosts:
            labels = {"alertname": name, "host": host, "env": "prod", "severity": severity}
            alerts.append({
                "status": status, "labels": labels,
                "annotations": {"summary": f"{name} on {host}: 97.5 > 90", "description": "CPU busy for 5m"},
                "startsAt": "2026-12-04T20:00:00Z",
                "endsAt": "2026-12-04T20:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": f"http://fiberstack.test/alerts/{uuid.uuid4()}",
                "fingerprint": uuid.uuid4().hex,
            })
    common = {"env": "prod", "severity": severity}
    if len(names) == 1:
        common["alertname"] = names[0]
    if len(hosts) == 1:
        common["host"] = hosts[0]
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{names[0]}"}}', "truncatedAlerts": 0,
            "status": status, "receiver": "ops", "groupLabels": {"alertname": names[0]},
            "commonLabels": common, "commonAnnotations": {}, "externalURL": "http://fiberstack.test",
            "alerts": alerts}


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    organization = factory.SubFactory(OrganizationFactory)
    channel = factory.SubFactory(NotificationChannelFactory, organization=factory.SelfAttribute("..organization"))
    kind = NotificationKind.FIRING
    payload = factory.LazyAttribute(lambda o: v4_payload("resolved" if o.kind == NotificationKind.RESOLVED
                                                         else "firing"))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A real HTTP server on 127.0.0.1:<free port>. ``script`` is consumed one entry per request:
    an int status, or (status, delay_seconds); past its end every request gets ``default``."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    default: int = 200
    default_delay: float = 0.0
    hold: threading.Event | None = None  # set: the next request waits until the event is set
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        return [r.headers.get("Idempotency-Key", "") for r in list(self.requests)]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.requests)} requests, expected {count}")
            time.sleep(0.05)


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                step = receiver.script.pop(0) if receiver.script else (receiver.default, receiver.default_delay)
                hold, receiver.hold = receiver.hold, None
            status, delay = step if isinstance(step, tuple) else (step, 0.0)
            if hold is not None:
                hold.wait(60)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else f"error {status}".encode())
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[HttpReceiver]:
    recv = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recv))
    server.daemon_threads = True
    recv.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recv
    finally:
        if recv.hold is not None:
            recv.hold.set()
        server.shutdown()
        server.server_close()


class _Inbox:
    """Keeps every envelope it is given; answers DATA with the next of ``replies`` (then 250)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.replies: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return self.replies.pop(0) if self.replies else "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; its envelopes land in ``inbox.messages``."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield SmtpServer(controller.hostname, controller.port, inbox)
    finally:
        controller.stop()
