"""Query benchmark: TSBS "devops cpu-only" history, rolled up, queried through the HTTP API.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/query.py [--hosts 100] [--days 7] [--runs 50] [--workers 2] [--redis-db 14] [--keep-db]
    # then, on the kept database, only the query side (seconds instead of ~12 minutes of loading):
    ... bench/query.py --reuse [--settings MODULE] [--queries q1,q3] [--no-sizes] [--compress]

It starts its own server with production settings (``bench/_server.py``: fresh database
``fiberstack_bench_query``, Redis database ``--redis-db`` flushed first, ``--workers`` daphne processes
on one socket), then:

1. posts the newest tick of the workload (``--hosts`` TSBS hosts, ten ``usage_*`` fields, TSBS host
   tags) through ``POST /api/v1/write`` -- this registers hosts and series and fills the Redis hot tier;
2. loads the history before it -- ``--days`` days at 10 s -- straight into the raw table with SQL
   ``generate_series`` (posting 60 M values through HTTP would take minutes on its own and is what
   ``bench/ingest.py`` measures). Values are whole numbers in [0, 100] like TSBS's int64 fields: a
   slow and a fast sine per series plus uniform noise of +-2, clamped -- a stand-in for TSBS's
   clamped random walk with the same value range and similar bucket-to-bucket smoothness;
3. runs the rollup job (``apps.metrics.rollups.jobs.run_rollups``) until every tier has caught up,
   and reports its throughput;
4. times ``--runs`` sequential requests (after 5 warm-up requests) of each query over one keep-alive
   connection and prints median and p95:

   * q1 -- max of ``cpu_usage_user`` per minute for one host over one hour
     (``GET /api/v1/metrics?name=cpu_usage_user&host=host_0&step=60&agg=max``: the 1m tier);
   * q2 -- mean of ``cpu_usage_user`` per host per hour over 12 hours, all hosts
     (``name=cpu_usage_user&step=3600&agg=avg``: the 1h tier);
   * q3 -- last value of every field of every host
     (``GET /api/v1/metrics/latest?labels=__name__=~"cpu_.*"``: the Redis hot tier);
   * with ``--compress`` (``manage.py compress_raw`` first: closed days older than one day, plain
     PostgreSQL), q1's shape forced onto raw samples (``tier=raw``) over an hour of row data (qr, 2 h
     before the end) and over an hour of a compressed day (qc, 2 days before the end);

5. prints bytes per stored row for raw (rows, and compressed chunks when there are any) and each tier
   (``pg_total_relation_size`` summed over partitions, indexes included, divided by rows; for tiers also
   per raw value represented).

``--keep-db`` keeps the database (and the Redis database) after the run; ``--reuse`` then skips steps 1-3
on it: it issues a fresh read token, takes the newest sample's time as the workload's end (the queries
ask for the same hours as the run that loaded it), refills the hot tier from the raw table if Redis lost
it, and measures. ``--settings`` runs the server with another ``DJANGO_SETTINGS_MODULE`` (a module on
``PYTHONPATH`` that imports ``fiberstack.settings.prod`` and changes one thing) to measure a settings change
before committing it.

Targets (issue #4): q1 <= 5 ms, q2 <= 20 ms, q3 <= 10 ms. Exit status 1 when a query fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _tsbs
from _server import ORG_SLUG, BenchServer

INTERVAL = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--days", type=float, default=7.0, help="history loaded before the newest tick")
    parser.add_argument("--runs", type=int, default=50, help="timed requests per query (at least 20)")
    parser.add_argument("--workers", type=int, default=2, help="daphne worker processes")
    parser.add_argument("--db-name", default="fiberstack_bench_query")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis database used and flushed (default 14)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database and Redis data afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="measure on a database kept by an earlier --keep-db run (no load, no rollups)")
    parser.add_argument("--settings", default="fiberstack.settings.prod", help="DJANGO_SETTINGS_MODULE of the server")
    parser.add_argument("--queries", default="q1,q2,q3", help="which queries to time (comma-separated)")
    parser.add_argument("--no-sizes", action="store_true", help="skip the bytes-per-value table")
    parser.add_argument("--compress", action="store_true",
                        help="run manage.py compress_raw before timing, and time q1 on raw samples over an "
                             "hour of a compressed day (qc) and of row data (qr)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20")
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL: the bench creates its database on that server")
    return args


def newest_tick(hosts: int, end_s: int) -> bytes:
    import random

    rng = random.Random(1)
    lines = []
    for h in range(hosts):
        fields = ",".join(f"{f}={rng.randrange(101)}i" for f in _tsbs.CPU_FIELDS)
        lines.append(f"{_tsbs.host_tags(h, rng)} {fields} {end_s * 1_000_000_000}")
    return ("\n".join(lines) + "\n").encode()


def post(server: BenchServer, body: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("POST", "/api/v1/write?precision=ns", body, {"Authorization": f"Bearer {server.write_token}"})
    response = conn.getresponse()
    reply = response.read()
    conn.close()
    if response.status != 204:
        raise SystemExit(f"write failed: {response.status} {reply[:300]!r}")


def load_history(server: BenchServer, days: float, end_s: int) -> tuple[int, float]:
    """Raw samples for every cpu series from end - days up to the tick before end, one day per statement."""
    start_s = end_s - int(days * 86400)
    env = server.env()
    server.manage("shell", "-c", (
        "import datetime as dt; from apps.metrics import storage\n"
        f"d = dt.datetime.fromtimestamp({start_s}, dt.UTC).date()\n"
        f"while d <= dt.datetime.fromtimestamp({end_s}, dt.UTC).date():\n"
        "    storage.ensure_partitions(days_ahead=0, today=d); d += dt.timedelta(days=1)\n"
    ), env=env)
    started = time.perf_counter()
    total = 0
    with psycopg.connect(server.database_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        ids = conn.execute("SELECT id FROM metrics_series WHERE name LIKE 'cpu_%%'").fetchall()
        lo = start_s
        while lo < end_s:
            hi = min(lo + 86400, end_s)
            cur = conn.execute(
                """
                INSERT INTO metrics_sample (time, series_id, value)
                SELECT to_timestamp(t), s.id,
                       greatest(0, least(100, round(50 + 35 * sin(t / (3600.0 * (1 + s.id %% 7)) + s.id)
                                                    + 8 * sin(t / 97.0 + 3 * s.id) + random() * 4 - 2)))
                FROM unnest(%s::int[]) AS s(id)
                CROSS JOIN generate_series(%s::bigint, %s::bigint - 1, %s) AS t
                """,
                [[i for (i,) in ids], lo, hi, INTERVAL],
            )
            total += cur.rowcount
            print(f"  loaded {total:,} raw values ({(hi - start_s) / 86400:.1f} of {days:g} days)", flush=True)
            lo = hi
        conn.execute("ANALYZE metrics_sample")
    return total, time.perf_counter() - started


def run_rollups(server: BenchServer) -> str:
    return server.manage("shell", "-c", (
        "import time\n"
        "from django.db import connection\n"
        "from apps.core.locks import advisory_lock\n"
        "from apps.metrics.rollups.jobs import run_rollups\n"
        "from apps.metrics.rollups.tiers import TIERS\n"
        "started = time.perf_counter(); runs = 0\n"
        "with advisory_lock('metrics.rollup'):\n"
        "    while True:\n"
        "        runs += 1; reports = run_rollups(budget_seconds=30)\n"
        "        if all(r.caught_up for r in reports): break\n"
        "spent = time.perf_counter() - started\n"
        "with connection.cursor() as c:\n"
        "    for t in TIERS: c.execute(f'ANALYZE {t.table}')\n"
        "print(f'{runs} runs in {spent:.1f} s')\n"
    ), env=server.env()).splitlines()[-1]


def sizes(server: BenchServer) -> list[tuple[str, int, int, int]]:
    """(tier, rows, raw values represented, bytes incl. indexes) for raw and each rollup table."""
    out = []
    with psycopg.connect(server.database_url) as conn:
        for name, table in (("raw", "metrics_sample"), ("1m", "metrics_rollup_1m"), ("5m", "metrics_rollup_5m"),
                            ("1h", "metrics_rollup_1h"), ("1d", "metrics_rollup_1d")):
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s)", [table]
            ).fetchone()[0]
            if name == "raw":
                rows = values = conn.execute("SELECT count(*) FROM metrics_sample").fetchone()[0]
                chunks, packed, packed_size = conn.execute(
                    "SELECT count(*), coalesce(sum(count), 0), pg_total_relation_size('metrics_sample_compressed') "
                    "FROM metrics_sample_compressed").fetchone()
                if chunks:
                    out.append(("raw, compressed", int(chunks), int(packed), int(packed_size)))
            else:
                rows, values = conn.execute(f"SELECT count(*), coalesce(sum(count), 0) FROM {table}").fetchone()
            out.append((name, int(rows), int(values), int(size)))
    return out


def timed(server: BenchServer, path: str, runs: int) -> tuple[list[float], dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {server.read_token}"}
    body: dict = {}
    latencies = []
    for index in range(runs + 5):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"GET {path} -> {response.status} {raw[:300]!r}")
        if index >= 5:
            latencies.append(elapsed * 1000)
        body = json.loads(raw)
    conn.close()
    return latencies, body


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def reuse(server: BenchServer) -> tuple[int, int]:
    """Attach to a kept database: a fresh read token, the workload's end and the raw value count."""
    env = server.env()
    server.read_token = server.manage("issue_token", ORG_SLUG, f"bench-read-{int(time.time())}", "--scope", "read",
                                      env=env).splitlines()[-1]
    with psycopg.connect(server.database_url) as conn:
        newest = conn.execute("SELECT extract(epoch FROM max(time))::bigint FROM metrics_sample").fetchone()[0]
        values = conn.execute("SELECT count(*) FROM metrics_sample").fetchone()[0]
    if newest is None:
        raise SystemExit(f"{server.db_name} holds no samples: load it first with --keep-db")
    # The hot tier lives in Redis; a flushed Redis would turn q3 into the raw-table fallback.
    print(server.manage("shell", "-c", (
        "from django.db import connection\n"
        "from apps.metrics import hot\n"
        "from apps.metrics.models import Series\n"
        "org = Series.objects.values_list('organization_id', flat=True).first()\n"
        "ids = list(Series.objects.filter(organization_id=org).values_list('id', flat=True))\n"
        "if len(hot.latest_values(org, ids)) < len(ids):\n"
        "    with connection.cursor() as c:\n"
        "        c.execute('SELECT i.id, x.t, x.v FROM unnest(%s::int[]) i(id) CROSS JOIN LATERAL (SELECT '\n"
        "                  '(extract(epoch FROM time) * 1000000)::bigint t, value v FROM metrics_sample '\n"
        "                  'WHERE series_id = i.id ORDER BY time DESC LIMIT 1) x', [ids])\n"
        "        rows = c.fetchall()\n"
        "    hosts = dict(Series.objects.filter(id__in=ids).values_list('id', 'host_id'))\n"
        "    hot.store_latest(org, {sid: (t, v) for sid, t, v in rows}, hosts)\n"
        "    print(f'hot tier refilled: {len(rows)} series')\n"
        "else:\n"
        "    print(f'hot tier holds all {len(ids)} series')\n"
    ), env=env).splitlines()[-1], flush=True)
    return int(newest), int(values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = BenchServer(base_database_url=os.environ["DATABASE_URL"],
                         base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                         redis_db=args.redis_db, db_name=args.db_name, workers=args.workers,
                         keep_db=args.keep_db or args.reuse, extra_env={"DJANGO_SETTINGS_MODULE": args.settings})
    wanted = {q.strip() for q in args.queries.split(",") if q.strip()}
    if args.reuse:
        print(f"reusing {args.db_name} ...", flush=True)
        end_s, values = reuse(server)
    else:
        end_s = int(time.time()) // 60 * 60 - 60
        print(f"preparing {args.db_name} ...", flush=True)
        server.prepare()
    try:
        server.start()
        if not args.reuse:
            post(server, newest_tick(args.hosts, end_s))
            values, load_s = load_history(server, args.days, end_s)
            print(f"loaded {values:,} raw values in {load_s:.1f} s", flush=True)
            started = time.perf_counter()
            rollup_note = run_rollups(server)
            rollup_s = time.perf_counter() - started
            print(f"rollups: {rollup_note} ({values / rollup_s:,.0f} raw values/s)", flush=True)
        if args.compress:
            print(server.manage("compress_raw", env=server.env()).splitlines()[-1], flush=True)
            wanted |= {"qr", "qc"}

        hour_end = end_s // 3600 * 3600
        queries = {
            "q1 max usage_user per minute, 1 host, 1 h": "/api/v1/metrics?" + urlencode({
                "name": "cpu_usage_user", "host": "host_0", "step": 60, "agg": "max",
                "start": hour_end - 3600, "end": hour_end - 1}),
            "q2 mean usage_user per host per hour, 12 h": "/api/v1/metrics?" + urlencode({
                "name": "cpu_usage_user", "step": 3600, "agg": "avg",
                "start": hour_end - 12 * 3600, "end": hour_end - 1}),
            "q3 last value of every field of every host": "/api/v1/metrics/latest?" + urlencode({
                "labels": '__name__=~"cpu_.*"'}),
        }
        targets = [5.0, 20.0, 10.0]
        # q1's shape on raw samples: an hour of row data (2 h ago) and the same hour of a day compressed by
        # --compress (2 days before the end); the target is 2x the row figure, shown as 0 here.
        compressed_hour = hour_end - 2 * 86400
        for key, start in (("qr", hour_end - 2 * 3600), ("qc", compressed_hour)):
            kind = "row data" if key == "qr" else "compressed day"
            queries[f"{key} q1 on raw (tier=raw), 1 h of {kind}"] = "/api/v1/metrics?" + urlencode({
                "name": "cpu_usage_user", "host": "host_0", "step": 60, "agg": "max", "tier": "raw",
                "start": start, "end": start + 3599})
            targets.append(0.0)
        print(f"\n{args.hosts} hosts x 10 fields, {args.days:g} days at {INTERVAL} s = {values:,} raw values; "
              f"{args.workers} daphne workers, {args.settings}; {args.runs} runs each\n")
        print(f"{'query':46} {'tier':>5} {'series':>6} {'points':>7} {'median ms':>10} {'p95 ms':>8} {'target':>7}")
        for (label, path), target in zip(queries.items(), targets, strict=True):
            if label[:2] not in wanted:
                continue
            latencies, body = timed(server, path, args.runs)
            series = body.get("series", [])
            points = sum(len(s.get("points", [])) for s in series) or len(series)
            print(f"{label:46} {body.get('tier', 'hot'):>5} {len(series):>6} {points:>7} "
                  f"{statistics.median(latencies):>10.2f} {p95(latencies):>8.2f} {target:>7.0f}", flush=True)
        if not args.no_sizes:
            print(f"\n{'storage':8} {'rows':>12} {'raw values':>12} {'MB':>9} {'B/row':>7} {'B/raw value':>12}")
            for name, rows, represented, size in sizes(server):
                per_value = size / represented if represented else 0
                print(f"{name:8} {rows:>12,} {represented:>12,} {size / 2**20:>9.1f} {size / max(rows, 1):>7.1f} "
                      f"{per_value:>12.2f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
