"""`python -m fiberstack.webserver`: several daphne processes on one socket, HTTP and websockets alike.

The integration test starts the real server (two daphne workers, development settings) on the test
database, holds several live-page websockets open, checks they landed on more than one worker, and
sends one group message through Redis that every socket must receive, whichever process holds it."""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.hosts.live import hosts_group
from fiberstack.devstack.system import free_port
from fiberstack.webserver import cpu_count, daphne_command, worker_count

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
SOCKETS = 12


def test_worker_count_defaults_to_one_per_core() -> None:
    assert worker_count("") == worker_count("0") == worker_count(None) == cpu_count()
    assert worker_count("3") == 3
    with pytest.raises(ValueError, match="WEB_WORKERS"):
        worker_count("-1")


def test_daphne_serves_the_inherited_descriptor() -> None:
    command = daphne_command("python", 7, proxy_headers=True)
    assert command[command.index("--fd") + 1] == "7"
    assert "--proxy-headers" in command and "-p" not in command and "-b" not in command


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a real web server on the suite's database and Redis (dev settings, DEBUG off)."""
    s = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fiberstack.settings.dev",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


@pytest.fixture
def server(transactional_db: Any) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = server_env(WEB_WORKERS=str(WORKERS))
    process = subprocess.Popen([sys.executable, "-m", "fiberstack.webserver", "--bind", "127.0.0.1", "--port",
                                str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert process.poll() is None, "the web server exited"
            assert time.monotonic() < deadline, "the web server did not answer within 60 s"
            time.sleep(0.2)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _open_websocket(port: int, path: str, session: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: http://127.0.0.1:{port}\r\nCookie: sessionid={session}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _read_text_frame(sock: socket.socket) -> dict:
    """One unmasked server frame (RFC 6455): FIN + text opcode, then the length and the payload."""
    first, length = sock.recv(2, socket.MSG_WAITALL)
    assert first == 0x81, hex(first)
    if length == 126:
        length = int.from_bytes(sock.recv(2, socket.MSG_WAITALL), "big")
    elif length == 127:
        length = int.from_bytes(sock.recv(8, socket.MSG_WAITALL), "big")
    return json.loads(sock.recv(length, socket.MSG_WAITALL))


def _connections_per_worker(process: subprocess.Popen[bytes], port: int) -> dict[int, int]:
    """Worker pid -> established connections it holds on ``port``."""
    return {worker.pid: sum(1 for conn in worker.net_connections("tcp")
                            if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port)
            for worker in psutil.Process(process.pid).children()}


def _workers_holding(process: subprocess.Popen[bytes], port: int) -> set[int]:
    return {pid for pid, held in _connections_per_worker(process, port).items() if held}


def test_several_workers_serve_http_and_websockets_on_one_port(
        server: tuple[int, subprocess.Popen[bytes]], org: Any, member_ro: Any) -> None:
    port, process = server
    assert len(psutil.Process(process.pid).children()) == WORKERS
    client = Client()
    client.force_login(member_ro)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    sockets = [_open_websocket(port, f"/ws/{org.slug}/hosts/", session) for _ in range(SOCKETS)]
    try:
        # The kernel hands each connection to whichever worker accepts first: all of them get some.
        deadline = time.monotonic() + 10
        while len(_workers_holding(process, port)) < WORKERS and time.monotonic() < deadline:
            sockets.append(_open_websocket(port, f"/ws/{org.slug}/hosts/", session))
        assert len(_workers_holding(process, port)) == WORKERS
        time.sleep(0.5)  # the consumers join the group right after the handshake
        layer = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix="fs:channels")  # settings.dev's layer
        async_to_sync(layer.group_send)(hosts_group(org.pk), {"type": "hosts.update", "hosts": ["probe"]})
        received = [_read_text_frame(sock) for sock in sockets]
        assert received == [{"type": "hosts.update", "hosts": ["probe"]}] * len(sockets)
    finally:
        for sock in sockets:
            sock.close()


def _wait_until_every_worker_accepts(process: subprocess.Popen[bytes], port: int) -> None:
    """The server answers as soon as one worker does; the others may still be importing Django."""
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < WORKERS:
        assert time.monotonic() < deadline, f"only workers {seen} accepted within 30 s"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        seen |= _workers_holding(process, port)
        conn.close()
        time.sleep(0.05)


def test_a_burst_of_connections_is_dealt_out_over_the_workers(
        server: tuple[int, subprocess.Popen[bytes]]) -> None:
    """Agents connecting together must not share one worker's core (fiberstack/webworker.py)."""
    port, process = server
    _wait_until_every_worker_accepts(process, port)
    burst = 4 * WORKERS
    ready = threading.Barrier(burst)
    connections: list[http.client.HTTPConnection] = []

    def connect() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        ready.wait()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        connections.append(conn)  # kept open: an agent's keep-alive connection

    threads = [threading.Thread(target=connect) for _ in range(burst)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(connections) == burst
        held = list(_connections_per_worker(process, port).values())
        # 4 and 4 on an idle machine; a loaded one (the suite's other worker) may wake a worker late, so one
        # connection either way is allowed. Plain daphne often gave 1/7 or 2/6.
        assert sum(held) == burst and max(held) - min(held) <= 2, held
    finally:
        for conn in connections:
            conn.close()


def test_a_dead_worker_stops_the_server_so_the_container_restarts(
        server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, process = server
    first, second = psutil.Process(process.pid).children()
    first.kill()
    assert process.wait(timeout=40) != 0
    assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE
    assert not _answers(port)


def test_sigterm_stops_every_worker(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, process = server
    workers = psutil.Process(process.pid).children()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
    assert not _answers(port)


@pytest.fixture
def small_limit_server(transactional_db: Any) -> Iterator[int]:
    """One daphne worker with a 1 KiB ingest limit and a 512-byte limit elsewhere."""
    port = free_port()
    env = server_env(WEB_WORKERS="1", FIBERSTACK_INGEST_MAX_BODY_BYTES="1024", FIBERSTACK_MAX_REQUEST_BODY_BYTES="512")
    process = subprocess.Popen([sys.executable, "-m", "fiberstack.webserver", "--bind", "127.0.0.1", "--port",
                                str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert process.poll() is None, "the web server exited"
            assert time.monotonic() < deadline, "the web server did not answer within 60 s"
            time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)


def _raw_exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 5) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received, time.monotonic() - started


@pytest.mark.parametrize(("path", "limit", "json_body"), [
    ("/write?db=x", 1024, True), ("/api/v1/metrics", 1024, True), ("/api/v1/hosts/", 512, True),
    ("/accounts/login/", 512, False),
])
def test_a_declared_length_over_the_limit_is_answered_413_before_any_body_arrives(
        small_limit_server: int, path: str, limit: int, json_body: bool) -> None:
    """daphne waited for all 99,999,999,999 declared bytes (spooling them to a temporary file) before the
    application, and so the 413 of apps/core/asgi_limits.py, ever ran: the client never got an answer."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 99999999999\r\n\r\n").encode()
    received, seconds = _raw_exchange(small_limit_server, head)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert seconds < 3
    body = received.split(b"\r\n\r\n", 1)[1]
    if json_body:
        setting = "FIBERSTACK_INGEST_MAX_BODY_BYTES" if limit == 1024 else "FIBERSTACK_MAX_REQUEST_BODY_BYTES"
        assert json.loads(body) == {"error": f"The request body is larger than the limit of {limit} bytes "
                                             f"({setting}).", "code": "too_large", "limit": limit}
    else:
        assert b"larger than the limit of 512 bytes" in body


def test_a_chunked_body_is_cut_with_413_at_the_chunk_that_crosses_the_limit(small_limit_server: int) -> None:
    head = (b"POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 600
    received, _ = _raw_exchange(small_limit_server, head, (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert json.loads(received.split(b"\r\n\r\n", 1)[1])["code"] == "too_large"


def test_a_body_within_the_limit_still_reaches_the_door(small_limit_server: int) -> None:
    head = (b"POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 14\r\nConnection: close\r\n\r\n")
    received, _ = _raw_exchange(small_limit_server, head, b"cpu,host=a v=1")
    assert received.startswith(b"HTTP/1.1 401 "), received[:200]  # no token: the door itself answered
