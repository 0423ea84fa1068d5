"""The private Redis server under var/redis, used when REDIS_URL is not set."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
from pathlib import Path

from fiberstack.devstack.config import LOCALHOST, Layout, redis_url, render_redis_conf
from fiberstack.devstack.system import (
    DevstackError,
    apt_install,
    is_root,
    pid_alive,
    port_for_new_server,
    run_checked,
    say,
    tail,
    wait_until,
)

START_TIMEOUT = 15
# Debian keeps redis-server in /usr/bin, which a trimmed PATH (cron, some CI runners) may lack.
FALLBACK_LOCATIONS = tuple(Path(d) / "redis-server" for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin"))


def send_command(port: int, command: bytes, timeout: float = 1.0) -> bytes:
    """Send one inline command and return the first reply chunk; b'' when nobody answers. A raw
    socket keeps devstack free of the redis client library and of redis-cli."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout) as conn:
            conn.sendall(command + b"\r\n")
            return conn.recv(256)
    except OSError:
        return b""


def ping(port: int) -> bool:
    return send_command(port, b"PING").startswith(b"+PONG")


def find_redis_server(path_env: str | None) -> Path | None:
    found = shutil.which("redis-server", path=path_env)
    if found:
        return Path(found)
    for candidate in FALLBACK_LOCATIONS:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def configured_port(conf_text: str) -> int | None:
    """The port a running instance was started with (from the config file written at its start)."""
    match = re.search(r"^port\s+(\d+)\s*$", conf_text, re.MULTILINE)
    return int(match.group(1)) if match else None


class RedisServer:
    """Start-if-needed, reuse-if-running Redis in var/redis (no persistence)."""

    def __init__(self, layout: Layout, port: int) -> None:
        self.layout = layout
        self.port = port

    def running_pid(self) -> int | None:
        try:
            pid = int(self.layout.redis_pid.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, "redis") else None

    def running_port(self) -> int:
        try:
            return configured_port(self.layout.redis_conf.read_text()) or self.port
        except OSError:
            return self.port

    def status(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return "stopped"
        return f"running (pid {pid}) on {LOCALHOST}:{self.running_port()}, files in {self.layout.redis_dir}"

    def ensure(self, db: int) -> str:
        """Make sure the server answers PING, then return REDIS_URL for database `db`."""
        pid = self.running_pid()
        if pid is not None:
            port = self.running_port()
            if not wait_until(lambda: ping(port), START_TIMEOUT):
                raise DevstackError(
                    f"Redis (pid {pid}) does not answer PING on {LOCALHOST}:{port}.\n"
                    f"  last lines of {self.layout.redis_log}:\n{tail(self.layout.redis_log)}"
                )
            if port != self.port:
                say(f"Redis already runs on port {port}; the new port {self.port} applies after `stop`")
            say(f"Redis already running on {LOCALHOST}:{port} (pid {pid})")
            return redis_url(port, db)
        self._start()
        say(f"Redis started on {LOCALHOST}:{self.port} ({self.layout.redis_dir})")
        return redis_url(self.port, db)

    def _start(self) -> None:
        binary = find_redis_server(os.environ.get("PATH"))
        if binary is None and is_root():
            apt_install(["redis-server"], "redis-server not found")
            binary = find_redis_server(os.environ.get("PATH"))
        if binary is None:
            raise DevstackError(
                "redis-server was not found. Install it (Debian/Ubuntu: `sudo apt-get install redis-server`; "
                "macOS: `brew install redis`) or set REDIS_URL to an existing server."
            )
        self.port = port_for_new_server(self.port, "FIBERSTACK_REDIS_PORT", say)
        self.layout.redis_dir.mkdir(parents=True, exist_ok=True)
        self.layout.redis_pid.unlink(missing_ok=True)
        self.layout.redis_conf.write_text(
            render_redis_conf(self.port, self.layout.redis_dir, self.layout.redis_pid, self.layout.redis_log)
        )
        # `daemonize yes` forks into its own session, so Ctrl-C on `make run` leaves it running.
        run_checked(
            [str(binary), str(self.layout.redis_conf)],
            what="starting redis-server",
            cwd=self.layout.redis_dir,
            log=self.layout.redis_log,
            new_session=True,
        )
        # Redis writes its pid file only after binding the port; waiting for it (not just PING)
        # avoids mistaking some other server that grabbed the port meanwhile for ours.
        if not wait_until(lambda: self.running_pid() is not None and ping(self.port), START_TIMEOUT):
            raise DevstackError(
                f"redis-server did not come up on {LOCALHOST}:{self.port} within {START_TIMEOUT}s.\n"
                f"  last lines of {self.layout.redis_log}:\n{tail(self.layout.redis_log)}"
            )

    def stop(self, timeout: float = 15) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        send_command(self.running_port(), b"SHUTDOWN NOSAVE")
        if not wait_until(lambda: not pid_alive(pid, "redis"), timeout):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid, "redis"), 5)
        self.layout.redis_pid.unlink(missing_ok=True)
        return True
