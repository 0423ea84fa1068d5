"""What a repeated (series, time) costs at write time: ``storage.copy_samples`` on TSBS-sized requests.

    DATABASE_URL=... .venv/bin/python bench/retry.py [--requests 10] [--series 1000] [--instants 50]

In process, no HTTP: the price of the write path alone. On a fresh database ``fiberstack_bench_retry``
(dropped and re-created, migrated; dropped at the end) each round writes one request of
``--series`` x ``--instants`` values (50,000 by default, like one 5,000-line TSBS body) four ways, each
in its own transaction:

* new rows: the plain binary COPY every ordinary request takes;
* identical retry: the same request again (the reply was lost after COMMIT): every row conflicts;
* changed retry: the same keys with other values: every row conflicts and is updated;
* repeat in the request: new rows, the first 10 % of them repeated at the end of the body;
* new rows, always staged: what every request would cost if it always took the upsert path (staging
  COPY + ``INSERT ... SELECT DISTINCT ON ... ON CONFLICT``) instead of trying the plain COPY first.

Prints per kind the median wall time, client CPU and CPU of the PostgreSQL backend (read with psutil:
same machine only), which stays meaningful on a busy machine. Rounds interleave the kinds, so load
from other processes hits them alike. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from _server import database_url_for, drop_database, recreate_database

Rows = tuple[list[int], list[int], list[float]]
DB_NAME = "fiberstack_bench_retry"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10, help="rounds (one request of each kind per round)")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--instants", type=int, default=50, help="instants per request, 10 s apart")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL (the bench creates its database on that server)")
    return args


def setup_django(base_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url_for(base_url, DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiberstack.settings.dev")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def make_series(count: int) -> list[int]:
    from apps.metrics.models import Series, series_key_hash
    from apps.organizations.models import Organization

    org = Organization.objects.create(name="retry bench", slug="retry-bench")
    made = Series.objects.bulk_create(
        Series(organization=org, name="cpu_usage_user", labels={"host": f"h{i}"},
               key_hash=series_key_hash("cpu_usage_user", (("host", f"h{i}"),)))
        for i in range(count)
    )
    return [series.id for series in made]


def request(series: list[int], first_instant: int, instants: int, start_us: int) -> Rows:
    """Time-major like an agent's body: every series at one instant, then the next instant."""
    times, ids, values = [], [], []
    for k in range(first_instant, first_instant + instants):
        for sid in series:
            times.append(start_us + k * 10_000_000)
            ids.append(sid)
            values.append(random.random() * 100)
    return times, ids, values


def copy_samples(cursor: Any, rows: Rows) -> None:
    from apps.metrics import storage

    storage.copy_samples(cursor, *rows)


def always_staged(cursor: Any, rows: Rows) -> None:
    from apps.metrics.storage import common, merge

    merge.merge_rows(cursor, *common.sort_rows(*rows))


def backend() -> psutil.Process:
    """The PostgreSQL process serving this connection (same machine), whose CPU time is the server's cost."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return psutil.Process(cursor.fetchone()[0])


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def timed(write: Callable[[Any, Rows], None], rows: Rows, server: psutil.Process) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) seconds for one request in its own transaction."""
    from django.db import connection, transaction

    wall, cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(server)
    with transaction.atomic(), connection.cursor() as cursor:
        write(cursor, rows)
    return time.perf_counter() - wall, time.process_time() - cpu, cpu_seconds(server) - server_cpu


def main() -> int:
    args = parse_args()
    base_url = os.environ["DATABASE_URL"]
    recreate_database(base_url, DB_NAME)
    try:
        setup_django(base_url)
        series = make_series(args.series)
        start_us = int((time.time() - 6 * 3600) * 1_000_000)
        results: dict[str, list[tuple[float, float, float]]] = {}
        server = backend()

        for index in range(args.requests):
            fresh = request(series, 3 * index * args.instants, args.instants, start_us)
            changed = (fresh[0], fresh[1], [v + 1 for v in fresh[2]])
            other = request(series, (3 * index + 1) * args.instants, args.instants, start_us)
            cut = len(other[0]) // 10
            repeated = (other[0] + other[0][:cut], other[1] + other[1][:cut], other[2] + other[2][:cut])
            staged = request(series, (3 * index + 2) * args.instants, args.instants, start_us)
            for name, write, rows in (("new rows (plain COPY)", copy_samples, fresh),
                                      ("identical retry", copy_samples, fresh),
                                      ("changed retry", copy_samples, changed),
                                      ("repeat in the request", copy_samples, repeated),
                                      ("new rows, always staged", always_staged, staged)):
                results.setdefault(name, []).append(timed(write, rows, server))
        values = args.series * args.instants
        print(f"{args.requests} rounds, {values:,} values per request "
              f"({args.series} series x {args.instants} instants)")
        print(f"{'request (medians)':24s} {'wall':>9s} {'client CPU':>11s} {'PostgreSQL CPU':>15s} "
              f"{'values per PG CPU-s':>20s}")
        for name, samples in results.items():
            wall, client, pg = (statistics.median(s[k] for s in samples) for k in range(3))
            print(f"{name:24s} {wall * 1000:6.1f} ms {client * 1000:8.1f} ms {pg * 1000:12.1f} ms "
                  f"{values / pg if pg else float('inf'):20,.0f}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(base_url, DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
