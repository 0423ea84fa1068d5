"""The reference agent: collectors, probes, the buffered push client, and ``--once`` against the real doors.

The end-to-end tests post through Django's test client (an injected transport), so they exercise the
real ingest views, services and PostgreSQL storage without a socket; one test runs the management
command itself over HTTP against ``live_server``.
"""

from __future__ import annotations

import http.server
import json
import logging
import math
import platform
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from apps.hosts.models import Host
from apps.metrics.agent import AGENT_VERSION
from apps.metrics.agent.client import Batch, PushClient, Response
from apps.metrics.agent.collectors import HostCollector
from apps.metrics.agent.probes import HttpProbe, IcmpProbe, ProbeSet, TcpProbe, parse_probe, to_line_protocol
from apps.metrics.agent.runner import Agent, AgentConfig
from apps.metrics.models import Series


class DjangoClientTransport:
    """Agent transport that posts through django.test.Client: the real views, no network."""

    def __init__(self) -> None:
        self.client = Client()
        self.requests: list[tuple[str, int]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.client.post(path, data=body, content_type=headers["Content-Type"],
                                    HTTP_AUTHORIZATION=headers["Authorization"])
        self.requests.append((path, response.status_code))
        return Response(response.status_code, response.content, dict(response.items()))


class ScriptedTransport:
    """Answers from a script: an int is a status, an exception instance is raised (server down)."""

    def __init__(self, *script: int | Exception) -> None:
        self.script = list(script)
        self.bodies: list[bytes] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, Exception):
            raise outcome
        self.bodies.append(body)
        headers_out = {"Retry-After": "30"} if outcome == 429 else {}
        return Response(outcome, b'{"error": "scripted"}', headers_out)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def http_server() -> Iterator[str]:
    """A local HTTP server: ``/`` answers 200, ``/broken`` answers 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 500 if self.path == "/broken" else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _numbers(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _numbers(child, f"{path}.{key}" if path else key)
    else:
        yield path, value


def _sample_count(series_name: str, organization: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
            "WHERE r.organization_id = %s AND r.name = %s",
            [organization.pk, series_name],
        )
        return cursor.fetchone()[0]


# ---------------------------------------------------------------------------------------------------------
# Collectors


def test_collectors_return_finite_numbers_in_the_host_document() -> None:
    collection = HostCollector().collect()

    assert set(collection.document) == {"cpu", "mem", "swap", "system"}
    leaves = dict(_numbers(collection.document))
    assert leaves, "the document has metrics"
    for path, value in leaves.items():
        assert type(value) in (int, float), path
        assert math.isfinite(value), path
    assert 0 <= leaves["cpu.usage_idle"] <= 100
    assert 0 <= leaves["cpu.usage_active"] <= 100
    assert leaves["mem.total"] > 0
    assert leaves["system.n_cpus"] >= 1
    assert leaves["system.uptime"] > 0
    assert {"cpu.time_user", "cpu.usage_system", "mem.used_percent", "system.load1"} <= set(leaves)
    json.dumps(collection.document, allow_nan=False)  # what the client sends must be valid JSON


def test_collectors_label_per_device_metrics_and_report_hardware_info() -> None:
    items = HostCollector().collect().items

    for item in items:
        assert isinstance(item["name"], str) and item["name"]
        assert type(item["value"]) in (int, float) and math.isfinite(item["value"])
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in item["labels"].items())
    info = [item for item in items if item["name"] == "agent_info"]
    assert len(info) == 1
    assert info[0]["value"] == 1
    assert info[0]["labels"]["agent_version"] == AGENT_VERSION
    assert {"os", "kernel", "arch"} <= set(info[0]["labels"])
    names = {item["name"] for item in items}
    assert "net_bytes_recv" in names  # every machine has at least a loopback interface
    assert all("interface" in item["labels"] for item in items if item["name"].startswith("net_"))
    assert all("path" in item["labels"] for item in items if item["name"].startswith("disk_"))


# ---------------------------------------------------------------------------------------------------------
# Probes


def test_http_probe_of_a_local_server_is_up_with_status_and_latency(http_server: str) -> None:
    result = HttpProbe(http_server + "/").run()

    assert result.up is True
    assert result.status == 200
    assert result.latency_ms is not None and result.latency_ms >= 0


def test_http_probe_answering_500_is_down_but_reports_its_status(http_server: str) -> None:
    result = HttpProbe(http_server + "/broken").run()

    assert result.up is False
    assert result.status == 500


def test_tcp_probe_of_a_closed_port_is_down(closed_port: int) -> None:
    result = TcpProbe(f"tcp://127.0.0.1:{closed_port}").run()

    assert result.up is False
    assert result.latency_ms is None
    assert result.error


def test_tcp_probe_of_a_listening_port_is_up(http_server: str) -> None:
    port = urlsplit(http_server).port
    result = TcpProbe(f"tcp://127.0.0.1:{port}").run()

    assert result.up is True
    assert result.latency_ms is not None


def test_probe_set_tracks_uptime_percent_across_runs(http_server: str, closed_port: int) -> None:
    probes = ProbeSet([parse_probe(http_server + "/"), parse_probe(f"tcp://127.0.0.1:{closed_port}")])

    probes.run()
    second = {result.kind: result for result in probes.run()}

    assert second["http"].uptime_pct == 100.0
    assert second["tcp"].uptime_pct == 0.0


def test_icmp_probe_without_ping_is_reported_unsupported_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    probes = ProbeSet([IcmpProbe("icmp://127.0.0.1", ping="")])

    with caplog.at_level(logging.WARNING, logger="apps.metrics.agent.probes"):
        assert probes.run() == []
        assert probes.run() == []

    warnings = [r for r in caplog.records if "unsupported" in r.getMessage()]
    assert len(warnings) == 1
    assert probes.probes == []


@pytest.mark.parametrize("spec", ["ftp://example.com", "tcp://example.com", "icmp://"])
def test_malformed_probe_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_probe(spec)


def test_probe_line_protocol_escapes_tags_and_types_fields(http_server: str) -> None:
    result = HttpProbe(http_server + "/").run()
    result.uptime_pct = 100.0

    line = to_line_protocol([result], "web 1,a=b", 1_700_000_000.5)

    assert line.startswith("probe_http,host=web\\ 1\\,a\\=b,target=http://127.0.0.1:")
    assert "up=1i" in line and "status=200i" in line and "uptime_pct=100.0" in line
    assert line.endswith(" 1700000000500\n")


# ---------------------------------------------------------------------------------------------------------
# Push client


def test_retry_buffer_drops_the_oldest_batches_beyond_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    transport = ScriptedTransport(ConnectionRefusedError("down"))
    client = PushClient("http://x", "t", transport=transport, max_batches=3, clock=clock)

    with caplog.at_level(logging.WARNING, logger="apps.metrics.agent.client"):
        for n in range(5):
            client.submit(Batch("/api/v1/metrics", f"[{n}]".encode(), "application/json"))
            assert client.flush() is False

    assert client.pending == 3
    assert client.dropped == 2
    assert [b.body for b in client.buffer] == [b"[2]", b"[3]", b"[4]"]
    assert sum("dropped the oldest" in r.getMessage() for r in caplog.records) == 2

    transport.script = [204]
    assert client.flush() is False  # still backing off: nothing is sent before retry_at
    clock.now = client.retry_at + 0.01
    assert client.flush() is True
    assert transport.bodies == [b"[2]", b"[3]", b"[4]"]  # oldest first, order kept


def test_backoff_grows_while_the_server_stays_down() -> None:
    clock = FakeClock()
    client = PushClient("http://x", "t", transport=ScriptedTransport(503), clock=clock)
    client.submit(Batch("/p", b"x", "text/plain"))
    delays = []
    for _ in range(4):
        client.flush()
        delays.append(client.retry_at - clock.now)
        clock.now = client.retry_at
    assert delays == sorted(delays)
    assert 0.8 <= delays[0] <= 1.2 and 6.4 <= delays[3] <= 9.6
    assert client.pending == 1


def test_429_waits_for_retry_after() -> None:
    clock = FakeClock()
    client = PushClient("http://x", "t", transport=ScriptedTransport(429), clock=clock)
    client.submit(Batch("/p", b"x", "text/plain"))

    assert client.flush() is False
    assert client.retry_at - clock.now >= 30


def test_a_4xx_reply_drops_that_batch_and_sends_the_next() -> None:
    transport = ScriptedTransport(400, 204)
    client = PushClient("http://x", "t", transport=transport)
    client.submit(Batch("/p", b"bad", "text/plain"))
    client.submit(Batch("/p", b"good", "text/plain"))

    assert client.flush() is True
    assert client.rejected == 1 and client.sent == 1
    assert transport.bodies == [b"bad", b"good"]


# ---------------------------------------------------------------------------------------------------------
# --once against the real doors


def test_agent_once_stores_host_metrics_for_the_host(org: Any, other_org: Any, write_token: str) -> None:
    transport = DjangoClientTransport()
    agent = Agent(AgentConfig(url="http://testserver", token=write_token, host="agent-test-1", once=True),
                  transport=transport)

    assert agent.run_once() is True

    assert [status for _, status in transport.requests] == [200, 200]
    series = Series.objects.for_org(org)
    host_series = series.filter(labels__host="agent-test-1")
    names = set(host_series.values_list("name", flat=True))
    assert {"cpu_usage_idle", "cpu_time_user", "mem_used_percent", "system_uptime", "agent_info",
            "net_bytes_recv"} <= names
    assert host_series.filter(name="cpu_usage_idle", host__name="agent-test-1").exists()
    assert _sample_count("mem_total", org) == 1
    interfaces = {s.labels["interface"] for s in host_series.filter(name="net_bytes_recv")}
    assert interfaces == set(psutil.net_io_counters(pernic=True))  # one series per interface
    assert not Series.objects.for_org(other_org).exists()  # the token's organization only
    host = Host.objects.get(organization=org, name="agent-test-1")
    assert host.agent_version == AGENT_VERSION
    assert host.hardware_info["os"] == platform.system().lower()
    assert host.hardware_info["cpu_logical"] == psutil.cpu_count()


def test_agent_once_pushes_probe_results_through_line_protocol(
    org: Any, write_token: str, http_server: str, closed_port: int
) -> None:
    transport = DjangoClientTransport()
    config = AgentConfig(url="http://testserver", token=write_token, host="prober",
                         probes=[http_server + "/", f"tcp://127.0.0.1:{closed_port}"])

    assert Agent(config, transport=transport).run_once() is True

    assert transport.requests[-1] == ("/api/v1/write?precision=ms", 204)
    series = Series.objects.for_org(org)
    http_up = series.get(name="probe_http_up", labels__target=http_server + "/")
    tcp_up = series.get(name="probe_tcp_up", labels__target=f"tcp://127.0.0.1:{closed_port}")
    assert http_up.labels["host"] == tcp_up.labels["host"] == "prober"
    with connection.cursor() as cursor:
        cursor.execute("SELECT series_id, value FROM metrics_sample WHERE series_id IN (%s, %s)",
                       [http_up.id, tcp_up.id])
        values = dict(cursor.fetchall())
    assert values == {http_up.id: 1.0, tcp_up.id: 0.0}
    assert series.filter(name="probe_http_status").exists()
    assert series.filter(name="probe_http_latency_ms").exists()


def test_agent_once_with_a_read_only_token_fails(org: Any, read_token: str) -> None:
    transport = DjangoClientTransport()
    agent = Agent(AgentConfig(url="http://testserver", token=read_token, host="h"), transport=transport)

    assert agent.run_once() is False
    assert {status for _, status in transport.requests} == {403}
    assert not Series.objects.for_org(org).exists()


@pytest.mark.django_db(transaction=True)
def test_agent_command_once_over_http(live_server: Any, org: Any, write_token: str) -> None:
    call_command("agent", "--url", live_server.url, "--token", write_token, "--host", "cmd-host", "--once")

    assert Series.objects.for_org(org).filter(name="cpu_usage_idle", labels__host="cmd-host").exists()


@pytest.mark.django_db(transaction=True)
def test_agent_command_reads_its_token_from_the_environment(live_server: Any, org: Any, write_token: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # make run starts the demo agent this way, so the token never shows in the process list.
    monkeypatch.setenv("FIBERSTACK_AGENT_TOKEN", write_token)
    call_command("agent", "--url", live_server.url, "--host", "env-host", "--once")

    assert Series.objects.for_org(org).filter(name="cpu_usage_idle", labels__host="env-host").exists()


def test_agent_command_without_a_token_anywhere_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.management.base import CommandError

    monkeypatch.delenv("FIBERSTACK_AGENT_TOKEN", raising=False)
    with pytest.raises(CommandError, match="--token"):
        call_command("agent", "--url", "http://127.0.0.1:9", "--once")


def test_agent_command_once_exits_non_zero_when_the_server_is_down(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management.base import CommandError

    monkeypatch.setattr("apps.metrics.agent.client.BACKOFF_START_S", 0.01)  # the retries, without the waiting

    with pytest.raises(CommandError) as excinfo:
        call_command("agent", "--url", f"http://127.0.0.1:{closed_port}", "--token", "x", "--once",
                     "--timeout", "1")
    assert excinfo.value.returncode == 1
