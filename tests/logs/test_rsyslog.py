"""The real rsyslog of Debian (8.2302, packages rsyslog + rsyslog-elasticsearch) ships to FiberStack
unmodified: omelasticsearch in bulk mode, ``POST /_bulk`` on the server root with legacy ``_type`` action
lines and preemptive basic auth (uid/pwd), after its ``/_cat/health`` check. Lines arrive, none is
reported failed (``errorfile`` stays absent). Skipped, with the reason, where rsyslog is not installed
(`make test` installs it as root: fiberstack/devstack/cli.py TEST_CLIENT_PACKAGES)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentProcesses
from tests.logs.shippers import OMELASTICSEARCH, RSYSLOGD, entry_count, free_port, host_port, rfc5424, send_syslog

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(RSYSLOGD is None or OMELASTICSEARCH is None,
                       reason="rsyslog with omelasticsearch (Debian rsyslog, rsyslog-elasticsearch) is not installed"),
]
HOST = "rsyslog-e2e"


def rsyslog_conf(tmp_path: Path, url: str, token: str, port: int) -> Path:
    """The configuration docs/logs.md shows, with a private work directory and a TCP input."""
    server, server_port = host_port(url)
    (tmp_path / "work").mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""\
global(workDirectory="{tmp_path / "work"}")
module(load="imtcp")
module(load="omelasticsearch")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="ship")

template(name="fiber-json" type="list" option.json="on") {{
  constant(value="{{\\"@timestamp\\":\\"") property(name="timereported" dateFormat="rfc3339")
  constant(value="\\",\\"host\\":\\"") property(name="hostname")
  constant(value="\\",\\"severity\\":\\"") property(name="syslogseverity-text")
  constant(value="\\",\\"facility\\":\\"") property(name="syslogfacility-text")
  constant(value="\\",\\"program\\":\\"") property(name="programname")
  constant(value="\\",\\"message\\":\\"") property(name="msg")
  constant(value="\\"}}")
}}

ruleset(name="ship") {{
  action(type="omelasticsearch" server="{server}" serverport="{server_port}" usehttps="off"
         searchIndex="fiber-logs" searchType="events" template="fiber-json" bulkmode="on"
         uid="rsyslog" pwd="{token}" errorfile="{tmp_path / "es-errors.json"}"
         queue.type="linkedList" queue.dequeueBatchSize="100" action.resumeRetryCount="-1")
}}
""")
    return conf


def start_rsyslog(agents: AgentProcesses, tmp_path: Path, url: str, token: str) -> int:
    port = free_port()
    conf = rsyslog_conf(tmp_path, url, token, port)
    assert RSYSLOGD is not None
    agents.start([RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid")], tmp_path / "rsyslog.out",
                 cwd=tmp_path)
    return port


def test_rsyslog_bulk_mode_delivers_every_line(live_server: Any, org: Any, write_token: str, read_token: str,
                                               client: Any, tmp_path: Path, agent_processes: AgentProcesses) -> None:
    port = start_rsyslog(agent_processes, tmp_path, live_server.url, write_token)
    lines = [rfc5424(HOST, "sshd", 3, f"Failed password for root from 10.0.0.{n}") for n in range(50)]
    lines += [rfc5424(HOST, "cron", 6, "session opened")]
    send_syslog(port, lines)
    agent_processes.wait_for(lambda: entry_count(org.pk, HOST) >= 51, "51 entries from rsyslog", timeout=60)
    agent_processes.stop_all()

    assert entry_count(org.pk, HOST) == 51
    assert not (tmp_path / "es-errors.json").exists(), (tmp_path / "es-errors.json").read_text()
    found = client.get("/api/v1/logs", {"q": "password root", "level": "err", "host": HOST, "limit": 100},
                       HTTP_AUTHORIZATION=f"Bearer {read_token}").json()["results"]
    assert len(found) == 50
    assert {e["program"] for e in found} == {"sshd"} and {e["level"] for e in found} == {"error"}
    assert found[0]["context"] == {"facility": "user"}  # PRI 8 + severity: the user facility


def test_rsyslog_with_a_wrong_password_stores_nothing(live_server: Any, org: Any, tmp_path: Path,
                                                      agent_processes: AgentProcesses) -> None:
    port = start_rsyslog(agent_processes, tmp_path, live_server.url, "fst_000000000000_wrong")
    send_syslog(port, [rfc5424(HOST, "app", 6, "should not arrive")])
    out = tmp_path / "rsyslog.out"
    agent_processes.wait_for(lambda: out.exists() and "\"status\":401" in out.read_text(errors="replace"),
                             "the 401 in rsyslog's output", timeout=60)
    agent_processes.stop_all()
    assert entry_count(org.pk, HOST) == 0
