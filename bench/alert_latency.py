"""Alert latency: sample posted -> Alertmanager-v4 webhook received, for firing and for resolved.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/alert_latency.py [--trials 50] [--workers 2]
        [--redis-db 13] [--keep-db]

It starts the product as ``make run`` does but with production settings (bench/_server.py: a fresh
database ``fiberstack_bench_alerts``, ``--workers`` daphne processes, one Celery worker for every queue
and Celery beat), a local HTTP receiver, then configures everything through the public API with a
config token: a webhook channel pointing at the receiver (rate limit off) and one threshold rule on ``bench_latency``
(``last`` over 60 s, ``> 50`` critical, no pending period, grouped by host, FiberStack's defaults for the
rest). Each trial uses its own host: it posts ``bench,host=trial-N latency=100`` (series ``bench_latency``)
through the InfluxDB door and waits for the webhook whose alert for ``trial-N`` is firing; then posts
``latency=0`` and waits for the resolved one. Latency = receive time - post time (before the request). Printed: p50, p95
and max for firing and resolved, and any trial that timed out. Exit 1 when a trial timed out.

Reference from the issue, measured with Prometheus + Alertmanager: p95 93 s with defaults, 9.6 s with a
10 s evaluation interval, 1.4 s with every timer at 1 s; resolves up to 296 s by default.
Target with FiberStack's defaults: firing and resolved p95 <= 2 s.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import BenchServer


class Receiver(http.server.ThreadingHTTPServer):
    """Records (arrival time, body) of every POST; answers 200 at once, as a healthy receiver does."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = threading.Condition()

    def wait_for(self, host: str, status: str, since: float, timeout: float) -> float | None:
        """Arrival time of the first notification after ``since`` whose alert for ``host`` has ``status``."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for arrived_at, body in self.received:
                    if arrived_at >= since and any(alert.get("labels", {}).get("host") == host
                                                   and alert.get("status") == status
                                                   for alert in body.get("alerts", [])):
                        return arrived_at
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.arrived.wait(remaining)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        arrived_at = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        server: Receiver = self.server  # type: ignore[assignment]
        with server.arrived:
            server.received.append((arrived_at, payload))
            server.arrived.notify_all()

    def log_message(self, *args: Any) -> None:
        pass


def api(url: str, token: str, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
        content_type: str = "application/json") -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    try:
        return response.status, json.loads(data) if data else None
    except ValueError:
        return response.status, data.decode(errors="replace")


def configure(url: str, config_token: str, receiver_url: str) -> None:
    status, channel = api(url, config_token, "POST", "/api/v1/channels",
                          {"name": "bench receiver", "kind": "webhook", "url": receiver_url,
                           # Two notifications per trial, one trial a second: the default 60/min limit
                           # would delay trials past the first minute (by design: delayed, never dropped).
                           "rate_limit_per_minute": 0})
    if status != 201:
        raise SystemExit(f"creating the channel failed: {status} {channel}")
    status, rule = api(url, config_token, "POST", "/api/v1/rules", {
        "name": "bench latency", "kind": "threshold", "metric": "bench_latency", "reducer": "last", "window": 60,
        "comparator": ">", "critical": 50, "for": 0, "channels": [channel["id"]], "group_by": ["host"]})
    if status != 201:
        raise SystemExit(f"creating the rule failed: {status} {rule}")


def post_value(url: str, write_token: str, host: str, value: float) -> float:
    """Post one sample now; returns the perf_counter time just before the request."""
    line = f"bench,host={host} latency={value} {time.time_ns()}".encode()  # series bench_latency
    began = time.perf_counter()
    status, body = api(url, write_token, "POST", "/api/v1/write?precision=ns", raw=line, content_type="text/plain")
    if status != 204:
        raise SystemExit(f"posting a sample failed: {status} {body}")
    return began


def summary(values: list[float]) -> str:
    if not values:
        return "no data"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"p50 {statistics.median(ordered):6.2f} s   p95 {p95:6.2f} s   max {ordered[-1]:6.2f} s   "
            f"(n={len(ordered)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="daphne processes")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one webhook")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--db-name", default="fiberstack_bench_alerts")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    server = BenchServer(os.environ["DATABASE_URL"],
                         base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                         redis_db=args.redis_db, db_name=args.db_name, workers=args.workers, keep_db=args.keep_db)
    server.prepare()
    config_token = server.issue_token("bench-config", "config")
    server.start()
    server.start_celery()
    firing: list[float] = []
    resolved: list[float] = []
    missed: list[str] = []
    try:
        configure(server.url, config_token, receiver_url)
        time.sleep(3)  # the worker and beat finish starting; a new rule takes effect within 3 s
        for trial in range(args.trials):
            host = f"trial-{trial}"
            began = post_value(server.url, server.write_token, host, 100)
            arrived = receiver.wait_for(host, "firing", began, args.timeout)
            if arrived is None:
                missed.append(f"{host}: no firing webhook within {args.timeout:.0f} s")
                continue
            firing.append(arrived - began)
            began = post_value(server.url, server.write_token, host, 0)
            arrived = receiver.wait_for(host, "resolved", began, args.timeout)
            if arrived is None:
                missed.append(f"{host}: no resolved webhook within {args.timeout:.0f} s")
                continue
            resolved.append(arrived - began)
        print(f"\nsample -> webhook, {args.trials} trials, FiberStack defaults, {args.workers} daphne workers, "
              "1 Celery worker (concurrency 2) + beat")
        print(f"  firing    {summary(firing)}")
        print(f"  resolved  {summary(resolved)}")
        for line in missed:
            print("  MISSED", line)
        if missed:
            print(server.log_tail())
        return 1 if missed else 0
    finally:
        server.stop()
        receiver.shutdown()


if __name__ == "__main__":
    sys.exit(main())
