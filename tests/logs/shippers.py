"""Running the real log shippers (Debian's rsyslog with omelasticsearch, syslog-ng with http()) against
a live server: private configuration, work directory and log per test, fed over loopback TCP, always
stopped (tests/conftest.py ``agent_processes``)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from fiberstack.devstack.system import find_program

RSYSLOGD = find_program("rsyslogd")
OMELASTICSEARCH = next((str(p) for p in Path("/usr/lib").glob("*/rsyslog/omelasticsearch.so")), None)
#: syslog-ng conflicts with rsyslog as a Debian package, so devstack unpacks it under var/ (see
#: fiberstack/devstack/syslog_ng.py); the tests run that copy.
SYSLOG_NG_ROOT = Path(settings.VAR_DIR) / "syslog-ng"
SYSLOG_NG = SYSLOG_NG_ROOT / "usr" / "sbin" / "syslog-ng"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_syslog(port: int, lines: list[str], timeout: float = 30.0) -> None:
    """RFC 5424 messages over TCP, newline-framed, once the shipper listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall("".join(line + "\n" for line in lines).encode())
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def rfc5424(host: str, app: str, severity: int, message: str) -> str:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"<{8 + severity}>1 {stamp} {host} {app} {os.getpid()} - - {message}"


def entry_count(organization_id: int, host: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logs_entry WHERE organization_id = %s AND host = %s",
                       [organization_id, host])
        return int(cursor.fetchone()[0])


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 80)


def syslog_ng_argv(conf: Path, work: Path) -> tuple[list[str], dict[str, str]]:
    """The unpacked syslog-ng in the foreground with a private persist file, pid file and control socket."""
    libs = [SYSLOG_NG_ROOT / "usr/lib/x86_64-linux-gnu", SYSLOG_NG_ROOT / "lib/x86_64-linux-gnu",
            SYSLOG_NG_ROOT / "usr/lib/syslog-ng"]
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(str(p) for p in libs)}
    modules = next((SYSLOG_NG_ROOT / "usr/lib/syslog-ng").glob("3.*"), SYSLOG_NG_ROOT / "usr/lib/syslog-ng")
    argv = [str(SYSLOG_NG), "-F", "--no-caps", "-f", str(conf), f"--module-path={modules}",
            "-R", str(work / "syslog-ng.persist"),
            "-p", str(work / "syslog-ng.pid"), "-c", str(work / "syslog-ng.ctl")]
    return argv, env
