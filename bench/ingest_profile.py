"""cProfile of the line-protocol door in process: the same TSBS batches as bench/ingest.py, posted through
Django's request handler (middleware, auth, rate limits, parse, ``services.ingest``, COPY, hooks, reply).

    .venv/bin/python -m fiberstack.devstack exec .venv/bin/python bench/ingest_profile.py \\
        [--hours 2] [--batch 5000] [--warm 4] [--top 30] [--sort tottime] [--stats FILE]

py-spy (``bench/ingest.py --profile``) samples the real daphne workers but is not a project requirement;
this needs nothing outside the standard library. Differences from the served path: one process, one
thread, Django's WSGI-style handler instead of daphne's ASGI one (same middleware and view), so what it
shows is the cost of our code per request, not the server's. A fresh database ``fiberstack_bench_prof``
on the ``DATABASE_URL`` server (dropped at the end), Redis database ``--redis-db`` (default 12, flushed).
The first ``--warm`` batches are posted before profiling (series creation, caches); the rest are timed
and profiled, and the report prints values/s of the process with and without the profiler's overhead
(a second, unprofiled pass over the same batches after truncating the samples).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _tsbs
from _server import ROOT, BenchServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--warm", type=int, default=4, help="batches posted before timing")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--stats", help="also dump the raw pstats to this file")
    parser.add_argument("--redis-db", type=int, default=12)
    args = parser.parse_args(argv)

    workload = _tsbs.generate(hosts=args.hosts, hours=args.hours, interval_s=10, batch_lines=args.batch,
                              end_s=int(time.time()), seed=123)
    server = BenchServer(os.environ["DATABASE_URL"],
                         base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                         redis_db=args.redis_db, db_name="fiberstack_bench_prof")
    server.prepare()
    try:
        os.environ.update(server.env())
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.db import connection
        from django.test import Client

        client = Client(HTTP_AUTHORIZATION=f"Bearer {server.write_token}", HTTP_HOST="127.0.0.1")
        path = "/api/v1/write?db=bench&precision=ns"

        def post(bodies: list[bytes]) -> float:
            """Wall seconds; ``cpu`` gets this process's CPU seconds (PostgreSQL's work excluded)."""
            started, cpu_started = time.perf_counter(), time.process_time()
            for body in bodies:
                response = client.post(path, body, content_type="text/plain; charset=utf-8")
                if response.status_code != 204:
                    raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
            cpu.append(time.process_time() - cpu_started)
            return time.perf_counter() - started

        cpu: list[float] = []
        warm, timed = workload.bodies[: args.warm], workload.bodies[args.warm:]
        values = sum(body.count(b"\n") for body in timed) * len(_tsbs.CPU_FIELDS)
        post(warm)
        profiler = cProfile.Profile()
        profiler.enable()
        profiled = post(timed)
        profiler.disable()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE metrics_sample, metrics_rollupinvalidation")
        post(warm)
        plain = post(timed)
        print(f"{values:,} values in {len(timed)} requests: {values / plain:,.0f} values/s in one process "
              f"({values / profiled:,.0f} under cProfile); this process's CPU: {cpu[-1] / values * 1e9:,.0f} ns "
              "a value (PostgreSQL's work not included)\n")
        stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
        stats.print_stats(args.top)
        if args.stats:
            stats.dump_stats(args.stats)
        connection.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
