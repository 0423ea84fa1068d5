"""Live push latency: sample ingested through ``/api/v1/write`` -> the host list's websocket receives the update.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/live_push.py [--trials 60] [--workers 2]
        [--redis-db 12] [--keep-db]

It starts the product as ``make run`` does but with production settings (bench/_server.py: a fresh
database ``fiberstack_bench_live``, ``--workers`` daphne processes, a Celery worker for every queue and
beat), creates a viewer of the bench organization with ``manage.py shell``, signs it in through the real
login form (``/accounts/login/``, CSRF cookie and token, session cookie kept by hand because production
cookies are ``Secure`` and the bench talks plain HTTP to 127.0.0.1), then opens ``ws/bench/hosts/`` with
that session cookie -- the same socket the host list page opens -- through a minimal RFC 6455 client
(the ``websockets`` package is not a dependency).

Each trial posts one line ``bench,host=live-N value=1`` for a host never seen before, because live host
events are throttled per host (``FIBERSTACK_HOST_BROADCAST_INTERVAL``, 5 s by default), and waits for
the first websocket message naming ``live-N``. Latency = message arrival - time just before the POST
(so it includes the HTTP request, the ingest commit, the after-commit hooks, Redis pub/sub and the
consumer). Printed: a table with p50, p95 and max, and any trial that timed out (exit 1 then).
Target from the issue: p95 <= 0.5 s.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import ORG_SLUG, BenchServer

USERNAME = "bench-viewer"


def create_viewer(server: BenchServer, password: str) -> None:
    """A viewer of the bench organization (viewers need no second factor unless enrolled)."""
    server.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model; "
        "from apps.organizations.models import Membership, Organization; "
        f"u = get_user_model().objects.create_user({USERNAME!r}, password={password!r}); "
        f"Membership.objects.create(user=u, organization=Organization.objects.get(slug={ORG_SLUG!r}), "
        "role='viewer')"
    ), env=server.env())


class Cookies:
    """Just enough of a cookie jar: name -> value from every Set-Cookie, sent back on every request."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def take(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.values[name.strip()] = rest.split(";", 1)[0]

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.values.items())


def sign_in(port: int, password: str) -> Cookies:
    """Log in through /accounts/login/ as a browser does; returns the cookies holding the session."""
    cookies = Cookies()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/accounts/login/")
    response = conn.getresponse()
    page = response.read().decode()
    cookies.take(response)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if response.status != 200 or match is None:
        raise SystemExit(f"login page: {response.status}")
    body = urlencode({"csrfmiddlewaretoken": match.group(1), "username": USERNAME, "password": password,
                      "next": f"/{ORG_SLUG}/hosts/"})
    origin = f"http://127.0.0.1:{port}"
    conn.request("POST", "/accounts/login/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies.header(), "Origin": origin,
        "Referer": f"{origin}/accounts/login/"})
    response = conn.getresponse()
    response.read()
    cookies.take(response)
    if response.status != 302 or "sessionid" not in cookies.values:
        raise SystemExit(f"sign-in failed: {response.status} (cookies: {sorted(cookies.values)})")
    conn.close()
    return cookies


class WebSocket:
    """A minimal RFC 6455 client: handshake, masked client frames, text frames read on a thread and
    recorded with their arrival time; pings answered. Enough for a one-way live page socket."""

    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                   f"Cookie: {cookie}\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("websocket handshake: connection closed")
            head += chunk
        status_line, _, rest = head.partition(b"\r\n")
        if b" 101 " not in status_line:
            raise SystemExit(f"websocket handshake refused: {status_line.decode()}")
        self.buffer = rest.partition(b"\r\n\r\n")[2]
        self.sock.settimeout(None)
        self.messages: list[tuple[float, str]] = []
        self.arrived = threading.Condition()
        self.closed: str | None = None
        threading.Thread(target=self._read_loop, daemon=True).start()

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = secrets.token_bytes(4)
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read_loop(self) -> None:
        fragments = b""
        try:
            while True:
                first, second = self._read(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self._read(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self._read(8))[0]
                mask = self._read(4) if second & 0x80 else b""
                payload = self._read(length)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if opcode == 0x9:  # ping
                    self._send(0xA, payload)
                elif opcode == 0x8:  # close
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    raise ConnectionError(f"closed by the server (code {code})")
                elif opcode in (0x1, 0x0):
                    fragments += payload
                    if first & 0x80:
                        arrived_at = time.perf_counter()
                        with self.arrived:
                            self.messages.append((arrived_at, fragments.decode()))
                            self.arrived.notify_all()
                        fragments = b""
        except (ConnectionError, OSError) as exc:
            with self.arrived:
                self.closed = str(exc)
                self.arrived.notify_all()

    def wait_for(self, needle: str, since: float, timeout: float) -> float | None:
        """Arrival time of the first message after ``since`` naming ``needle`` (a host name)."""
        deadline = time.monotonic() + timeout
        quoted = json.dumps(needle)
        with self.arrived:
            while True:
                for arrived_at, text in self.messages:
                    if arrived_at >= since and quoted in text:
                        return arrived_at
                if self.closed:
                    raise SystemExit(f"websocket {self.closed}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.arrived.wait(remaining)

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


def post_sample(port: int, write_token: str, host: str) -> float:
    """Post one sample for ``host`` now; returns the perf_counter time just before the request."""
    line = f"bench,host={host} value=1 {time.time_ns()}".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    began = time.perf_counter()
    conn.request("POST", "/api/v1/write?precision=ns", body=line,
                 headers={"Authorization": f"Bearer {write_token}", "Content-Type": "text/plain"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 204:
        raise SystemExit(f"posting a sample failed: {response.status} {body[:300]!r}")
    return began


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="daphne processes")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one message")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between trials")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--db-name", default="fiberstack_bench_live")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("set DATABASE_URL (and REDIS_URL) to a PostgreSQL / Redis this bench may use")
    server = BenchServer(base_database_url=os.environ["DATABASE_URL"],
                         base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                         redis_db=args.redis_db, db_name=args.db_name, workers=args.workers, keep_db=args.keep_db)
    password = secrets.token_urlsafe(16)
    socket_: WebSocket | None = None
    try:
        server.prepare()
        # Production settings serve hashed static files from a manifest; the login page needs it.
        server.manage("collectstatic", "--no-input", env=server.env())
        create_viewer(server, password)
        server.start_celery()
        server.start()
        cookies = sign_in(server.port, password)
        socket_ = WebSocket(server.port, f"/ws/{ORG_SLUG}/hosts/", cookies.header())
        run = f"{int(time.time())}"
        post_sample(server.port, server.write_token, f"warmup-{run}")  # first request of each worker imports more
        socket_.wait_for(f"warmup-{run}", 0.0, args.timeout)
        latencies: list[float] = []
        timed_out: list[str] = []
        for trial in range(args.trials):
            host = f"live-{run}-{trial}"
            began = post_sample(server.port, server.write_token, host)
            arrived = socket_.wait_for(host, began, args.timeout)
            if arrived is None:
                timed_out.append(host)
            else:
                latencies.append(arrived - began)
            time.sleep(args.pause)
    finally:
        if socket_ is not None:
            socket_.close()
        server.stop()
    ordered = sorted(latencies)
    print(f"live push: POST /api/v1/write -> ws/{ORG_SLUG}/hosts/ message, {args.workers} daphne workers, "
          f"production settings, a new host per trial")
    print(f"{'trials':>8} {'received':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'target p95':>11}")
    if ordered:
        print(f"{args.trials:>8} {len(ordered):>9} {statistics.median(ordered) * 1000:>8.1f} "
              f"{percentile(ordered, 0.95) * 1000:>8.1f} {ordered[-1] * 1000:>8.1f} {'<= 500':>11}")
    for host in timed_out:
        print(f"timed out: {host}")
    return 1 if timed_out or not ordered else 0


if __name__ == "__main__":
    sys.exit(main())
