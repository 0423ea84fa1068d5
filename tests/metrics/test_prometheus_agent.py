"""The real Prometheus 2.42 (Debian package prometheus) remote-writes to FiberStack unmodified: it scrapes
itself every second and sends samples and metric metadata with a Bearer token, to the remote_write door
and to the VictoriaMetrics-style /api/v1/write. Prometheus's own counters prove that nothing failed.

`make test` installs the package on Debian when running as root (fiberstack/devstack); where it cannot be
installed these tests are skipped with the reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from apps.metrics.models import MetricFamily
from fiberstack.devstack.system import find_program, free_port
from tests.conftest import AgentProcesses
from tests.metrics.factories import sample_count

PROMETHEUS = find_program("prometheus")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian package prometheus) is not installed"),
]
REMOTE = "fiberstack"
#: Prometheus 2.42's remote-write counters (storage/remote/queue_manager.go), per remote_name and url.
SENT, FAILED = "prometheus_remote_storage_samples_total", "prometheus_remote_storage_samples_failed_total"
RETRIED, DROPPED = "prometheus_remote_storage_samples_retried_total", "prometheus_remote_storage_samples_dropped_total"
METADATA_SENT = "prometheus_remote_storage_metadata_total"
METADATA_FAILED = "prometheus_remote_storage_metadata_failed_total"
#: A family of Prometheus's own that is scraped from the first second (a counter, with help).
FAMILY = "prometheus_http_requests_total"


def prometheus_yml(tmp_path: Path, port: int, url: str, token: str) -> Path:
    """The configuration docs/agents.md shows, with 1 s intervals so a test needs seconds, not minutes."""
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
remote_write:
  - name: {REMOTE}
    url: {url}
    authorization:
      credentials: {token}
    queue_config:
      batch_send_deadline: 1s
      retry_on_http_429: true
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
""")
    return config


def start_prometheus(agents: AgentProcesses, tmp_path: Path, url: str, token: str) -> int:
    """Start Prometheus on a free loopback port; returns the port."""
    port = free_port()
    config = prometheus_yml(tmp_path, port, url, token)
    agents.start([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--log.level=info"],
                 tmp_path / "prometheus.log", cwd=tmp_path)
    return port


def own_metrics(port: int) -> dict[str, float]:
    """Prometheus's remote-storage counters from its /metrics, summed over labels; {} while it starts."""
    try:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (URLError, OSError):
        return {}
    totals: dict[str, float] = {}
    for match in re.finditer(r"^(prometheus_remote_storage_\w+)(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE):
        totals[match[1]] = totals.get(match[1], 0.0) + float(match[2])
    return totals


def api_get(url: str, token: str, path: str, **params: str) -> Any:
    """GET a read endpoint over HTTP with a read token, as a dashboard would."""
    request = Request(f"{url}{path}?{urlencode(params)}", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("path", ["/api/v1/prom/write", "/api/v1/write"])
def test_prometheus_remote_write_sends_samples_and_metadata_without_failures(
    path: str, live_server: Any, org: Any, write_token: str, read_token: str, tmp_path: Path,
    agent_processes: AgentProcesses,
) -> None:
    port = start_prometheus(agent_processes, tmp_path, live_server.url + path, write_token)

    def delivered() -> bool:
        counters = own_metrics(port)
        if counters.get(FAILED, 0) or counters.get(METADATA_FAILED, 0):  # no need to wait for the deadline
            pytest.fail(f"remote_write failed: {counters}\n{agent_processes.logs()}")
        return (sample_count(org, "up") >= 2 and counters.get(SENT, 0) > 0 and counters.get(METADATA_SENT, 0) > 0
                and MetricFamily.objects.filter(organization=org, name=FAMILY).exists())

    agent_processes.wait_for(delivered, "samples and metadata through remote_write", timeout=45)
    counters = own_metrics(port)
    agent_processes.stop_all()

    assert counters[FAILED] == 0, counters
    assert counters[METADATA_FAILED] == 0, counters
    assert counters[DROPPED] == counters[RETRIED] == 0, counters  # no 5xx/429 retried, nothing dropped
    assert counters[SENT] > 0 and counters[METADATA_SENT] > 0, counters
    instance = f"127.0.0.1:{port}"
    up = api_get(live_server.url, read_token, "/api/v1/metrics", name="up", labels='job="prometheus"')["series"]
    assert [(s["labels"], s["host"]) for s in up] == [({"job": "prometheus", "instance": instance}, "127.0.0.1")]
    # 1 per successful scrape (a scrape that timed out on a loaded machine would be a 0)
    assert len(up[0]["points"]) >= 2 and 1.0 in {value for _, value in up[0]["points"]}
    family = MetricFamily.objects.get(organization=org, name=FAMILY)
    assert family.type == "counter" and family.help, family
    series = api_get(live_server.url, read_token, "/api/v1/series", name=FAMILY)["results"]
    assert series and all(s["labels"]["instance"] == instance and s["type"] == "counter" for s in series)


def test_prometheus_with_a_wrong_token_counts_failures_and_stores_nothing(
    live_server: Any, org: Any, tmp_path: Path, agent_processes: AgentProcesses,
) -> None:
    port = start_prometheus(agent_processes, tmp_path, live_server.url + "/api/v1/prom/write",
                            "fst_000000000000_wrong")
    agent_processes.wait_for(lambda: own_metrics(port).get(FAILED, 0) > 0, "failed samples counted")
    counters = own_metrics(port)
    agent_processes.stop_all()

    assert counters.get(SENT, 0) == counters[FAILED], counters  # every sample sent was refused
    assert counters[RETRIED] == 0, counters  # a 401 is final
    assert sample_count(org) == 0
    assert "401 Unauthorized" in (tmp_path / "prometheus.log").read_text()
