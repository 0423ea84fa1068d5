"""The real InfluxDB 1.6 shell (Debian package influxdb-client) imports into FiberStack unmodified:
`influx -import` sends GET /ping, then POST /write?consistency=all&db=…&precision=s&rp= with basic auth.

The package is installed by `make test` on Debian when running as root (fiberstack/devstack); where it
cannot be installed the test is skipped with the reason."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.metrics.factories import sample_count

INFLUX = shutil.which("influx")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(INFLUX is None, reason="the influx CLI (Debian package influxdb-client) is not installed"),
]


def run_import(live_server: Any, path: Path, token: str) -> subprocess.CompletedProcess[str]:
    url = urlsplit(live_server.url)
    return subprocess.run(
        [INFLUX, "-import", f"-path={path}", "-precision=s", "-host", url.hostname, "-port", str(url.port),
         "-username", "telegraf", "-password", token],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_influx_import_stores_every_point(live_server: Any, org: Any, write_token: str, tmp_path: Path) -> None:
    now = int(time.time())
    data = tmp_path / "import.txt"
    data.write_text(
        "# DDL\nCREATE DATABASE fiberstack\n\n# DML\n# CONTEXT-DATABASE: fiberstack\n"
        + "".join(f"cpu,host=imp-{i % 3} usage_idle={90 + i},usage_user={i}i {now - i}\n" for i in range(50))
    )
    result = run_import(live_server, data, write_token)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Processed 1 commands" in output  # CREATE DATABASE through POST /query
    assert "Processed 50 inserts" in output
    assert "Failed 0 inserts" in output
    assert sample_count(org, "cpu_usage_idle") == 50
    assert sample_count(org, "cpu_usage_user") == 50


def test_influx_import_with_a_bad_token_fails_and_stores_nothing(live_server: Any, org: Any,
                                                                tmp_path: Path) -> None:
    data = tmp_path / "import.txt"
    data.write_text(f"# DML\ncpu,host=imp usage_idle=1 {int(time.time())}\n")
    result = run_import(live_server, data, "fst_000000000000_wrong")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Invalid, expired or revoked token." in output  # our JSON error reaches the CLI's user
    assert "1 point was not inserted" in output
    assert sample_count(org) == 0
