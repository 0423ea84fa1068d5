"""The real collectd 5.12 (Debian package collectd-core) reports to FiberStack unmodified: write_http with
``Format "JSON"`` and ``User``/``Password``. Its libcurl uses "any auth", which sends the credentials only
after a 401 that offers ``Basic`` (apps/metrics/views.py AUTH_CHALLENGE), so this is the test that proves
the challenge works. collectd runs as a child process with a private config, pid file and log.

`make test` installs the package on Debian when running as root (fiberstack/devstack); where it cannot be
installed these tests are skipped with the reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from django.db import connection

from fiberstack.devstack.system import find_program
from tests.conftest import AgentProcesses
from tests.metrics.factories import sample_count

COLLECTD = find_program("collectd")
HOSTNAME = "collectd-e2e"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(COLLECTD is None, reason="collectd (Debian package collectd-core) is not installed"),
    pytest.mark.usefixtures("_write_http_loads"),
]
#: What one report of the three plugins must produce (apps/metrics/ingest/collectd.py naming).
EXPECTED = ("collectd_cpu_total", "collectd_load_shortterm", "collectd_memory")


@pytest.fixture(scope="module")
def _write_http_loads(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip when collectd is there but its write_http plugin cannot load (its libraries are only Suggests
    of collectd-core). `collectd -T` loads the plugins, runs the read callbacks once (there are none) and
    exits; `-t` would not notice, it exits 0 even when a plugin cannot be loaded."""
    assert COLLECTD is not None
    directory = tmp_path_factory.mktemp("collectd-probe")
    conf = directory / "probe.conf"
    conf.write_text(f'BaseDir "{directory}"\nLoadPlugin write_http\n')
    probe = subprocess.run([COLLECTD, "-T", "-C", str(conf)], capture_output=True, text=True, timeout=30,
                           check=False)
    if probe.returncode != 0:
        pytest.skip("collectd's write_http plugin does not load (Debian packages libyajl2, libcurl3-gnutls): "
                    + (probe.stdout + probe.stderr).strip()[-300:])


def collectd_conf(tmp_path: Path, url: str, password: str) -> Path:
    """The configuration docs/agents.md shows, plus a private BaseDir/PIDFile and a 1 s interval.
    FlushInterval makes write_http send every second instead of when its 4 KiB buffer is full."""
    conf = tmp_path / "collectd.conf"
    conf.write_text(f"""\
Hostname "{HOSTNAME}"
FQDNLookup false
BaseDir "{tmp_path / "var"}"
PIDFile "{tmp_path / "collectd.pid"}"
Interval 1

LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{tmp_path / "collectd.log"}"
  Timestamp true
  PrintSeverity true
</Plugin>

LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
<LoadPlugin write_http>
  FlushInterval 1
</LoadPlugin>
<Plugin write_http>
  <Node "fiberstack">
    URL "{url}/api/v1/collectd"
    Format "JSON"
    User "collectd"
    Password "{password}"
    LogHttpError true
    Timeout 10000
  </Node>
</Plugin>
""")
    (tmp_path / "var").mkdir()
    return conf


def start_collectd(agents: AgentProcesses, tmp_path: Path, url: str, password: str) -> Path:
    """Start collectd in the foreground; returns its log file (collectd writes it itself)."""
    conf = collectd_conf(tmp_path, url, password)
    log = tmp_path / "collectd.log"
    agents.start([COLLECTD, "-f", "-C", str(conf)], tmp_path / "collectd.stdout", cwd=tmp_path, other_logs=(log,))
    return log


def fewest_samples(org: Any, name: str) -> int:
    """The smallest number of raw samples any series of `name` has (0 when there is no such series)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(min(n), 0) FROM (SELECT count(s.time) AS n FROM metrics_series r "
            "LEFT JOIN metrics_sample s ON s.series_id = r.id WHERE r.organization_id = %s AND r.name = %s "
            "GROUP BY r.id) AS counts", [org.pk, name])
        return int(cursor.fetchone()[0])


def log_text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def read_metrics(url: str, token: str, **params: str) -> list[dict[str, Any]]:
    """GET /api/v1/metrics over HTTP, as a dashboard would."""
    request = Request(f"{url}/api/v1/metrics?{urlencode(params)}", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read())["series"]


def test_collectd_write_http_authenticates_after_the_basic_challenge(
    live_server: Any, org: Any, write_token: str, read_token: str, tmp_path: Path, agent_processes: AgentProcesses,
) -> None:
    log = start_collectd(agent_processes, tmp_path, live_server.url, write_token)
    agent_processes.wait_for(lambda: all(fewest_samples(org, name) >= 2 for name in EXPECTED),
                             "samples of " + ", ".join(EXPECTED))
    agent_processes.stop_all()

    text = log_text(log)
    assert "Initialization complete" in text, text
    assert "Exiting normally" in text, text  # and the last flush, on SIGTERM, went through too
    assert "write_http plugin" not in text, text  # LogHttpError logs every non-200; errors are logged too
    cpu = read_metrics(live_server.url, read_token, name="collectd_cpu_total", host=HOSTNAME,
                       labels='type_instance="user"')
    assert {s["labels"]["instance"] for s in cpu} >= {"0"}
    assert all(s["host"] == HOSTNAME and s["labels"]["host"] == HOSTNAME for s in cpu)
    assert all(len(s["points"]) >= 2 for s in cpu)
    # jiffies of a derive data source, stored as sent (StoreRates false): a non-decreasing counter
    values = [value for _, value in cpu[0]["points"]]
    assert values == sorted(values)
    load = read_metrics(live_server.url, read_token, name="collectd_load_shortterm", host=HOSTNAME)
    assert [s["labels"] for s in load] == [{"host": HOSTNAME}]
    memory = read_metrics(live_server.url, read_token, name="collectd_memory", host=HOSTNAME)
    assert {"used", "free"} <= {s["labels"]["type_instance"] for s in memory}
    assert all(value > 0 for s in memory if s["labels"]["type_instance"] == "used" for _, value in s["points"])


def test_collectd_with_a_wrong_password_logs_the_401_and_stores_nothing(
    live_server: Any, org: Any, tmp_path: Path, agent_processes: AgentProcesses,
) -> None:
    log = start_collectd(agent_processes, tmp_path, live_server.url, "fst_000000000000_wrong")
    agent_processes.wait_for(lambda: log_text(log).count("write_http plugin: HTTP Error code: 401") >= 2,
                             "401 in the collectd log")
    agent_processes.stop_all()

    assert sample_count(org) == 0
    assert "HTTP Error code: 200" not in log_text(log)
