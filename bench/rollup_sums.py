"""What overflow-safe sums cost the rollup job: one 1m step from raw and one 5m merge, three ways.

Usage: ``PYTHONPATH=. .venv/bin/python bench/rollup_sums.py [--dsn DSN] [--series 1000] [--hours 6]
[--repeat 5]`` (DSN defaults to ``ROLLUP_BENCH_DSN`` or the local ``postgres`` database; with the
devstack: ``.venv/bin/python -m fiberstack.devstack exec sh -c 'PYTHONPATH=. .venv/bin/python
bench/rollup_sums.py --dsn "$DATABASE_URL"'``). Raw samples live in a TEMP table of one session (TSBS
cpu-like: a clamped random walk in [0, 100] every 10 s per series), so nothing is left behind.

Variants of every ``sum`` in the statements (``apps.metrics.sketch_sql.build_sketches_sql`` for 1m, the
stats part of ``apps.metrics.rollups.sql`` for the merge):

* ``float8 sum (unsafe)``: PostgreSQL's ``sum(float8)``, which raises on overflow (the code before);
* ``split + clamp (chosen)``: ``apps.metrics.rollups.sums.sum_sql``;
* ``numeric + clamp``: every value cast to numeric, summed, clamped and cast back.

Timings are the minimum of ``--repeat`` interleaved runs (a shared machine only adds noise), one core
per query (no parallel workers, no JIT).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import psycopg

from apps.metrics import sketch_sql
from apps.metrics.rollups.sums import clamp_numeric_sql, sum_sql

VARIANTS: dict[str, Callable[[str], str]] = {
    "float8 sum (unsafe)": lambda expr: f"sum({expr})",
    "split + clamp (chosen)": sum_sql,
    "numeric + clamp": lambda expr: clamp_numeric_sql(f"sum(({expr})::numeric)"),
}
BUCKET_1M = "date_bin(INTERVAL '60 seconds', {col}, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
BUCKET_5M = "date_bin(INTERVAL '300 seconds', {col}, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


def load(conn: psycopg.Connection, series: int, hours: int) -> int:
    conn.execute("CREATE TEMP TABLE raw (time timestamptz NOT NULL, series_id int NOT NULL, value float8 NOT NULL)")
    conn.execute(
        """
        INSERT INTO raw
        SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + make_interval(secs => 10 * i), s,
               round(least(100, greatest(0, 50 + 30 * sin(i / 200.0 + s) + 5 * random())))
        FROM generate_series(1, %s) AS s, generate_series(0, %s - 1) AS i
        """,
        [series, hours * 360],
    )
    conn.execute("CREATE INDEX ON raw (series_id, time DESC)")
    conn.execute("ANALYZE raw")
    return conn.execute("SELECT count(*) FROM raw").fetchone()[0]


def one_minute_sql(variant: Callable[[str], str]) -> str:
    original = sketch_sql.sum_sql
    sketch_sql.sum_sql = variant  # build_sketches_sql reads the module global
    try:
        inner = sketch_sql.build_sketches_sql(source="raw", bucket_expr=BUCKET_1M.format(col="s.time"),
                                              with_stats=True)
    finally:
        sketch_sql.sum_sql = original
    return f"CREATE TEMP TABLE m1 AS {inner}"


def merge_sql(variant: Callable[[str], str]) -> str:
    return (f"CREATE TEMP TABLE m5 AS SELECT series_id, {BUCKET_5M.format(col='bucket')} AS b, "
            f"sum(count) AS c, {variant('sum')} AS s, min(min) AS lo, max(max) AS hi FROM m1 GROUP BY 1, 2")


def timed(conn: psycopg.Connection, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("ROLLUP_BENCH_DSN", "dbname=postgres"))
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        for setting in ("max_parallel_workers_per_gather = 0", "jit = off", "work_mem = '64MB'"):
            conn.execute(f"SET {setting}")
        rows = load(conn, args.series, args.hours)
        print(f"{rows:,} raw samples: {args.series} series x {args.hours} h at 10 s")
        best: dict[str, list[float]] = {name: [float("inf"), float("inf")] for name in VARIANTS}
        for _ in range(args.repeat):
            for name, variant in VARIANTS.items():
                conn.execute("DROP TABLE IF EXISTS m1")
                conn.execute("DROP TABLE IF EXISTS m5")
                best[name][0] = min(best[name][0], timed(conn, one_minute_sql(variant)))
                best[name][1] = min(best[name][1], timed(conn, merge_sql(variant)))
        base = best["float8 sum (unsafe)"]
        print(f"{'variant':<24} {'1m step ms':>11} {'vs unsafe':>10} {'5m merge ms':>12} {'vs unsafe':>10}")
        for name, (one, five) in best.items():
            print(f"{name:<24} {one:>11.0f} {one / base[0] - 1:>+10.1%} {five:>12.0f} {five / base[1] - 1:>+10.1%}")


if __name__ == "__main__":
    main()
