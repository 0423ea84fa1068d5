"""Serve the ASGI application with several daphne processes on one listening socket (pre-fork).

daphne is a single process on one Twisted reactor, so one daphne uses one core. The parent binds the
socket once and starts N daphne processes with ``--fd`` on the inherited descriptor; the kernel hands
each new connection to whichever process accepts it first. Every process can serve any websocket: the
Channels layer is Redis, so a group message reaches a socket whatever process holds it.

``make run`` (fiberstack/devstack/cli.py) uses ``listen`` and ``daphne_command`` under its own
supervisor; the container's ``web`` role runs ``python -m fiberstack.webserver``, which supervises the
workers itself: SIGTERM/SIGINT stop them all, and when one dies the others are stopped too and the
exit status is passed on, so the container's restart policy starts a clean set (no half-capacity
server left running unnoticed). Standard library only."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

APPLICATION = "fiberstack.asgi:application"
STOP_TIMEOUT = 30.0


def cpu_count() -> int:
    """Cores this process may run on (the container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def worker_count(raw: str | None) -> int:
    """``WEB_WORKERS``: a positive number, or empty/0 for one per core."""
    count = int(raw) if raw and raw.strip() else 0
    if count < 0:
        raise ValueError(f"WEB_WORKERS={raw!r} must be 0 (one per core) or more")
    return count or cpu_count()


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket every worker inherits (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def daphne_command(python: str, fd: int, *, proxy_headers: bool = False, verbosity: int = 1) -> list[str]:
    """One worker, serving the already-listening descriptor ``fd``."""
    command = [python, "-m", "fiberstack.webworker", "--fd", str(fd), "-v", str(verbosity)]
    if proxy_headers:
        command.append("--proxy-headers")  # behind a load balancer, client IPs come from X-Forwarded-For
    return [*command, APPLICATION]


class Prefork:
    """Start ``workers`` daphne processes on ``sock`` and supervise them until a signal or a death."""

    def __init__(self, sock: socket.socket, workers: int, command: Sequence[str]) -> None:
        self.sock = sock
        self.workers = workers
        self.command = list(command)
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def start(self) -> None:
        for _ in range(self.workers):
            # stdout/stderr inherited: the container's log gets every worker's lines.
            self.children.append(subprocess.Popen(self.command, pass_fds=[self.sock.fileno()]))  # noqa: S603

    def _request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        self.start()
        print(f"webserver: {self.workers} daphne workers on {self.sock.getsockname()} "
              f"(pids {', '.join(str(c.pid) for c in self.children)})", flush=True)
        status = 0
        while not self.stopping:
            dead = next((c for c in self.children if c.poll() is not None), None)
            if dead is not None:
                print(f"webserver: worker {dead.pid} exited with {dead.returncode}; stopping the others",
                      file=sys.stderr, flush=True)
                status = dead.returncode or 1
                break
            time.sleep(0.2)
        self.stop()
        return status

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fiberstack.webserver", description=__doc__.split("\n")[0])
    parser.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - a container's web port
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", default=os.environ.get("WEB_WORKERS", ""),
                        help="daphne processes (default: WEB_WORKERS, or one per core)")
    parser.add_argument("--proxy-headers", action="store_true")
    args = parser.parse_args(argv)
    sock = listen(args.bind, args.port)
    command = daphne_command(sys.executable, sock.fileno(), proxy_headers=args.proxy_headers)
    return Prefork(sock, worker_count(args.workers), command).run()


if __name__ == "__main__":
    sys.exit(main())
