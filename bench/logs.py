"""Logs benchmark: lines/s through the Elasticsearch bulk door, then search latency.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/logs.py [--lines 1000000] [--batch 2000]
        [--clients 2] [--workers 2] [--searches 40] [--redis-db 14] [--keep-db]
    # or against a running server:
    .venv/bin/python bench/logs.py --url http://127.0.0.1:8000 --token "$INGEST" --read-token "$READ"

Without ``--url`` it starts its own server with production settings (bench/_server.py: a fresh database
``fiberstack_bench_logs``, ``--workers`` daphne processes on one socket) and removes it afterwards.

Workload: syslog-like documents as rsyslog's template sends them (host, severity, program, message), 200
hosts, 12 programs, messages from 14 templates filled with numbers, addresses and words of a 5,000-word
vocabulary, so the full-text index sees realistic distinct terms. ``--pool`` distinct bulk bodies are
generated before timing and posted round-robin until ``--lines`` lines were sent; the entries take the
arrival time. ``--clients`` threads post over keep-alive connections with basic auth, as shippers do.
Reported: lines/s over the posting phase, request p50/p99, refused items (must be 0), the stored count
(must equal the lines sent), then median and p95 of ``--searches`` runs of each search query over the
last 24 h through ``GET /api/v1/logs`` (newest 100, with highlights for full-text queries). Exit 1 when
anything was lost or refused.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import BenchServer

PROGRAMS = ["sshd", "nginx", "postgres", "kernel", "cron", "systemd", "api", "worker", "billing", "auth", "redis",
            "haproxy"]
LEVELS = ["info"] * 70 + ["notice"] * 8 + ["warning"] * 12 + ["err"] * 8 + ["crit"] * 2
TEMPLATES = [
    "Failed password for {word} from 10.{a}.{b}.{c} port {port} ssh2",
    "Accepted publickey for {word} from 10.{a}.{b}.{c} port {port} ssh2",
    'GET /api/v1/{word}/{n} HTTP/1.1" 200 {n} "-" "curl/8.{a}"',
    'POST /api/v1/{word} HTTP/1.1" 500 {n} upstream timed out after {ms} ms',
    "connection reset by peer while reading response header from upstream {word}",
    "checkpoint complete: wrote {n} buffers ({a}.{b}%); {word} sync",
    "Out of memory: Killed process {n} ({word}) total-vm:{n}kB",
    "job {word} finished in {ms} ms with status {a}",
    "payment {n} declined for customer {word}: insufficient funds",
    "disk usage {a}% on /dev/sd{c} mounted at /{word}",
    "cache miss ratio {a}.{b} for key space {word}",
    "request {n} from {word} took {ms} ms",
    "TLS handshake failed with 10.{a}.{b}.{c}: certificate expired ({word})",
    "worker {a} restarted after {word} exception: ValueError invalid literal",
]
SEARCHES = {
    "newest page (no filter)": {},
    "level=error": {"level": "error"},
    "q=timed out": {"q": "timed out"},
    'q="connection reset" host=host-7': {"q": '"connection reset"', "host": "host-7"},
    "q=payment declined level=warning+": {"q": "payment declined", "level": "warning+"},
    "q=<rare word>": {"q": None},  # filled with a vocabulary word
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--pool", type=int, default=50, help="distinct bodies generated before timing")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--searches", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--read-token")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--db-name", default="fiberstack_bench_logs")
    parser.add_argument("--settings", default="fiberstack.settings.prod")
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args(argv)


def make_vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(size)]


def make_bodies(rng: random.Random, vocabulary: list[str], pool: int, batch: int) -> list[bytes]:
    """``pool`` bulk bodies of ``batch`` index actions each, legacy ``_type`` included (rsyslog 8.2302)."""
    action = json.dumps({"index": {"_index": "fiber-logs", "_type": "events"}})
    bodies = []
    for _ in range(pool):
        lines = []
        for _ in range(batch):
            message = rng.choice(TEMPLATES).format(
                word=rng.choice(vocabulary), a=rng.randint(0, 99), b=rng.randint(0, 255), c=rng.randint(1, 254),
                n=rng.randint(1, 10**6), port=rng.randint(1024, 65535), ms=rng.randint(1, 30000))
            doc = {"host": f"host-{rng.randint(0, 199)}", "severity": rng.choice(LEVELS),
                   "facility": "daemon", "program": rng.choice(PROGRAMS), "message": message}
            lines.append(action)
            lines.append(json.dumps(doc))
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


class Poster:
    """``clients`` threads with keep-alive connections posting bodies round-robin until ``total`` lines."""

    def __init__(self, url: str, token: str, bodies: list[bytes], batch: int, total: int, clients: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        auth = base64.b64encode(f"rsyslog:{token}".encode()).decode()
        self.headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        self.bodies, self.batch, self.clients = bodies, batch, clients
        self.requests = (total + batch - 1) // batch
        self.latencies: list[float] = []
        self.statuses: Counter[int | str] = Counter()
        self.refused_items = 0
        self.failures: list[str] = []
        self._next = itertools.count()
        self._lock = threading.Lock()

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        while (index := next(self._next)) < self.requests:
            body = self.bodies[index % len(self.bodies)]
            started = time.perf_counter()
            try:
                conn.request("POST", "/_bulk", body, self.headers)
                response = conn.getresponse()
                reply = response.read()
                status: int | str = response.status
            except (OSError, http.client.HTTPException) as exc:
                status, reply = type(exc).__name__, str(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            elapsed = time.perf_counter() - started
            refused = 0
            if status == 200:
                data = json.loads(reply)
                if data["errors"]:
                    refused = sum(1 for item in data["items"] if item["index"]["status"] != 201)
            with self._lock:
                self.latencies.append(elapsed)
                self.statuses[status] += 1
                self.refused_items += refused
                if status != 200:
                    self.failures.append(f"request {index}: {status} {reply[:300]!r}")
        conn.close()

    def run(self) -> float:
        threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def search_latencies(url: str, token: str, runs: int, rare: str) -> dict[str, tuple[float, float, int]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
    out = {}
    for name, params in SEARCHES.items():
        params = {**params, "start": start, "limit": "100"}
        if params.get("q") is None and "q" in params:
            params["q"] = rare
        timings, found = [], 0
        for _ in range(runs):
            began = time.perf_counter()
            conn.request("GET", "/api/v1/logs?" + urlencode(params), headers=headers)
            response = conn.getresponse()
            raw = response.read()
            timings.append((time.perf_counter() - began) * 1000)
            if response.status != 200:
                raise RuntimeError(f"search {name}: {response.status} {raw[:500]!r}")
            found = len(json.loads(raw)["results"])
        out[name] = (quantile(timings, 0.5), quantile(timings, 0.95), found)
    conn.close()
    return out


def count_stored() -> int | None:
    """Entries in the bench database (own server only: a SQL count)."""
    database_url = os.environ.get("BENCH_DATABASE_URL")
    if not database_url:
        return None
    import psycopg

    with psycopg.connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM logs_entry").fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    vocabulary = make_vocabulary(rng)
    began = time.perf_counter()
    bodies = make_bodies(rng, vocabulary, args.pool, args.batch)
    print(f"generated {args.pool} bodies of {args.batch} lines ({sum(map(len, bodies)) / 1e6:.0f} MB) in "
          f"{time.perf_counter() - began:.1f} s; posting {args.lines:,} lines", flush=True)
    server = None
    if args.url:
        url, token, read_token = args.url, args.token, args.read_token
    else:
        server = BenchServer(os.environ["DATABASE_URL"],
                             base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                             redis_db=args.redis_db, db_name=args.db_name, workers=args.workers,
                             keep_db=args.keep_db, extra_env={"DJANGO_SETTINGS_MODULE": args.settings})
        server.prepare()
        server.start()
        os.environ["BENCH_DATABASE_URL"] = server.database_url
        url, token, read_token = server.url, server.write_token, server.read_token
        print(f"server: {args.workers} daphne workers, settings {args.settings}, on {url}", flush=True)
    try:
        poster = Poster(url, token, bodies, args.batch, args.lines, args.clients)
        elapsed = poster.run()
        sent = poster.requests * args.batch
        print(f"\n_bulk: {sent:,} lines in {elapsed:.1f} s = {sent / elapsed:,.0f} lines/s "
              f"({args.clients} clients, {args.batch}-line requests); request p50 "
              f"{quantile(poster.latencies, 0.5) * 1000:.0f} ms, p99 {quantile(poster.latencies, 0.99) * 1000:.0f} ms; "
              f"statuses {dict(poster.statuses)}; refused items {poster.refused_items}")
        for failure in poster.failures[:5]:
            print("  ", failure)
        stored = count_stored()
        if stored is not None:
            print(f"stored: {stored:,} (sent {sent:,})")
        print(f"\nsearch, {args.searches} runs each, last 24 h, newest 100:")
        for name, (median, p95, found) in search_latencies(url, read_token, args.searches,
                                                           rng.choice(vocabulary)).items():
            print(f"  {name:<40} median {median:7.1f} ms   p95 {p95:7.1f} ms   ({found} results)")
        lost = stored is not None and stored != sent
        return 1 if poster.failures or poster.refused_items or lost else 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
