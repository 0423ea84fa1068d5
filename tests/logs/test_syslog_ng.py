"""The real syslog-ng 3.38 of Debian (syslog-ng-core + syslog-ng-mod-http, unpacked under var/ by
devstack because the package conflicts with rsyslog) ships to ``POST /api/v1/logs`` with its ``http()``
destination unmodified: basic auth, NDJSON batches (``batch-lines``) of ``format-json`` bodies. Lines
arrive and syslog-ng reports no failed request."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentProcesses
from tests.logs.shippers import SYSLOG_NG, entry_count, free_port, rfc5424, send_syslog, syslog_ng_argv

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not SYSLOG_NG.exists(),
                                 reason="syslog-ng is not unpacked under var/syslog-ng (`make test` does it)")]
HOST = "syslog-ng-e2e"


def syslog_ng_conf(tmp_path: Path, url: str, token: str, port: int) -> Path:
    """The configuration docs/logs.md shows, fed from a TCP source (RFC 5424) instead of the system log."""
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(f"""\
@version: 3.38
options {{ stats-freq(0); keep-hostname(yes); }};
source s_test {{ network(ip("127.0.0.1") port({port}) transport("tcp") flags(syslog-protocol)); }};
destination d_fiberstack {{
  http(url("{url}/api/v1/logs")
       method("POST")
       user("syslog-ng")
       password("{token}")
       headers("Content-Type: application/x-ndjson")
       body("$(format-json time=$ISODATE host=$HOST program=$PROGRAM level=$LEVEL message=$MESSAGE)")
       batch-lines(100)
       batch-timeout(500));
}};
log {{ source(s_test); destination(d_fiberstack); }};
""")
    return conf


@pytest.fixture(scope="module")
def _http_module_loads(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip when the unpacked syslog-ng cannot load its http() module here (missing libcurl)."""
    directory = tmp_path_factory.mktemp("syslog-ng-probe")
    conf = syslog_ng_conf(directory, "http://127.0.0.1:9", "x", 9)
    argv, env = syslog_ng_argv(conf, directory)
    probe = subprocess.run([*argv, "--syntax-only"], env=env, capture_output=True, text=True, timeout=60,
                           check=False)
    if probe.returncode != 0:
        pytest.skip(f"syslog-ng cannot load its configuration: {(probe.stdout + probe.stderr).strip()[-300:]}")


@pytest.mark.usefixtures("_http_module_loads")
def test_syslog_ng_http_destination_delivers_every_line(live_server: Any, org: Any, write_token: str,
                                                        read_token: str, client: Any, tmp_path: Path,
                                                        agent_processes: AgentProcesses) -> None:
    port = free_port()
    argv, env = syslog_ng_argv(syslog_ng_conf(tmp_path, live_server.url, write_token, port), tmp_path)
    agent_processes.start(argv, tmp_path / "syslog-ng.out", cwd=tmp_path, env=env)
    lines = [rfc5424(HOST, "nginx", 4, f"upstream timed out request {n}") for n in range(40)]
    send_syslog(port, lines)
    agent_processes.wait_for(lambda: entry_count(org.pk, HOST) >= 40, "40 entries from syslog-ng", timeout=60)
    agent_processes.stop_all()

    assert entry_count(org.pk, HOST) == 40
    output = (tmp_path / "syslog-ng.out").read_text(errors="replace")
    assert "error" not in output.lower() and "Server returned" not in output, output
    found = client.get("/api/v1/logs", {"q": "upstream timed", "host": HOST, "level": "warning", "limit": 100},
                       HTTP_AUTHORIZATION=f"Bearer {read_token}").json()["results"]
    assert len(found) == 40 and {e["program"] for e in found} == {"nginx"}
