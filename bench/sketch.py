"""Measure the rollup quantile sketch in PostgreSQL: storage size, build, merge and quantile time.

Usage: ``PYTHONPATH=. .venv/bin/python bench/sketch.py [--dsn DSN] [--rows 1000000] [--work-mem 64MB]``
(DSN defaults to ``SKETCH_BENCH_DSN`` or the local ``postgres`` database). Everything lives in TEMP tables
of one session, so nothing is left behind. Timings are the minimum of ``--repeat`` interleaved runs,
because a shared machine only ever adds noise; one core per query (no parallel workers, no JIT).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import psycopg

from apps.metrics import sketch_sql
from apps.metrics.sketch import EXACT_MAX_COUNT, QuantileSketch
from apps.metrics.sketch_sql import bin_key_sql, build_sketches_sql, merge_sketches_sql, quantiles_sql

ORIGIN = "'2000-01-01 00:00:00+00'::timestamptz"
T0 = "'2025-01-01 00:00:00+00'::timestamptz"
QUANTILES = [0.5, 0.95, 0.99]
SERIES = 100
RANGE_BUCKETS = 720

# Two typical shapes: a CPU percentage sampled every 10 s (one decimal, drifting) and request latencies
# in ms, one per second, log-normal. Box-Muller gives normal noise without extensions.
NORMAL = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"
SHAPES: dict[str, tuple[int, str]] = {
    "cpu % 6/min": (
        10,
        f"round(least(100, greatest(0, 40 + 25 * sin(i / 500.0 + s) + 5 * {NORMAL}))::numeric, 1)",
    ),
    "latency ms 60/min": (1, f"exp(3 + 0.8 * {NORMAL})"),
}

# Alternative encodings of the same sketch: (columns built from the chosen int4 arrays, size expression,
# unnest into (k, n) for a merge).
UNNEST_ARRAYS = "unnest(s.sketch_keys, s.sketch_counts) AS u(k, n)"
REPRESENTATIONS: dict[str, tuple[str, str, str]] = {
    "int4[] keys + int4[] counts (chosen)": (
        "sketch_keys, sketch_counts",
        "pg_column_size(sketch_keys) + pg_column_size(sketch_counts)",
        UNNEST_ARRAYS,
    ),
    "int4[] keys + int8[] counts": (
        "sketch_keys, sketch_counts::bigint[] AS sketch_counts",
        "pg_column_size(sketch_keys) + pg_column_size(sketch_counts)",
        UNNEST_ARRAYS,
    ),
    "packed int8[] (key<<32 | count)": (
        "(SELECT array_agg((k::bigint << 32) | n ORDER BY k)"
        " FROM unnest(sketch_keys, sketch_counts) AS u(k, n)) AS packed",
        "pg_column_size(packed)",
        "LATERAL (SELECT (p >> 32)::int AS k, (p & 4294967295)::int AS n FROM unnest(s.packed) AS p) AS u",
    ),
    "jsonb {key: count}": (
        "(SELECT jsonb_object_agg(k, n) FROM unnest(sketch_keys, sketch_counts) AS u(k, n)) AS doc",
        "pg_column_size(doc)",
        "LATERAL (SELECT e.key::int AS k, e.value::int AS n FROM jsonb_each_text(s.doc) AS e) AS u",
    ),
}


class Bench:
    """A session with fixed planner settings and min-of-N timing helpers."""

    def __init__(self, conn: psycopg.Connection, repeat: int) -> None:
        self.conn = conn
        self.repeat = repeat

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql)
        return cursor.fetchall() if cursor.description else []

    def compare(self, cases: dict[str, Callable[[], object]]) -> dict[str, float]:
        """Run every case ``repeat`` times, interleaved, and keep each one's fastest run in ms."""
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(self.repeat):
            for name, case in cases.items():
                start = time.perf_counter()
                case()
                best[name] = min(best[name], (time.perf_counter() - start) * 1000)
        return best

    def query(self, sql: str, *settings: str) -> Callable[[], object]:
        """A case that runs ``sql`` (results fetched to the client) under ``SET LOCAL`` settings."""

        def run() -> object:
            with self.conn.transaction():
                for setting in settings:
                    self.conn.execute(f"SET LOCAL {setting}")
                return self.conn.execute(sql).fetchall()

        return run

    def materialize(self, sql: str, *settings: str) -> Callable[[], object]:
        """A case that writes ``sql``'s rows into a scratch TEMP table, as a rollup INSERT would."""

        def run() -> object:
            with self.conn.transaction():
                for setting in settings:
                    self.conn.execute(f"SET LOCAL {setting}")
                self.conn.execute(f"CREATE TEMP TABLE bench_out AS {sql}")
                return self.conn.execute("DROP TABLE bench_out")

        return run

    def load_raw(self, table: str, shape: str, series: int, samples_per_series: int) -> None:
        step, value = SHAPES[shape]
        self.execute("SELECT setseed(0.42)")
        self.execute(f"DROP TABLE IF EXISTS {table}")
        self.execute(
            f"""CREATE TEMP TABLE {table} AS
            SELECT {T0} + make_interval(secs => i * {step}) AS time, s AS series_id,
                   ({value})::float8 AS value
            FROM generate_series(1, {series}) AS s, generate_series(0, {samples_per_series - 1}) AS i"""
        )
        self.execute(f"ANALYZE {table}")


def minute_bucket(col: str) -> str:
    return f"date_bin('1 minute', s.{col}, {ORIGIN})"


def scalar_rollup_sql(raw: str) -> str:
    """count/sum/min/max/last: the rollup without a sketch, as the baseline the sketch adds to."""
    return f"""SELECT s.series_id, {minute_bucket("time")} AS bucket, count(*), sum(s.value), min(s.value),
        max(s.value), (array_agg(s.value ORDER BY s.time DESC))[1] AS last
        FROM {raw} AS s GROUP BY 1, 2"""


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[[f"{c:,.0f}" if isinstance(c, float) else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + " | ".join(padded))
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))


def bench_build(bench: Bench, rows_total: int) -> None:
    """Raw -> 1m rollups per data shape: scalars alone, sketch alone, and sketch + stats in one scan."""
    out = []
    for index, shape in enumerate(SHAPES):
        raw = f"raw_{index}"
        bench.load_raw(raw, shape, SERIES, rows_total // SERIES)
        sketch = build_sketches_sql(source=raw, bucket_expr=minute_bucket("time"), exact_max=0)
        kept = build_sketches_sql(source=raw, bucket_expr=minute_bucket("time"))
        with_stats = build_sketches_sql(source=raw, bucket_expr=minute_bucket("time"), with_stats=True)
        times = bench.compare(
            {
                "scalars": bench.materialize(scalar_rollup_sql(raw)),
                "sketch": bench.materialize(sketch),
                "kept": bench.materialize(kept),
                "stats+kept sorted": bench.materialize(with_stats, "enable_hashagg = off"),
            }
        )
        bench.execute(f"CREATE TEMP TABLE rollup_{index} AS {sketch}")
        bench.execute(f"CREATE TEMP TABLE kept_{index} AS {kept}")
        buckets, bins = bench.execute(f"SELECT count(*), avg(cardinality(sketch_keys)) FROM rollup_{index}")[
            0
        ]
        out.append([shape, f"{rows_total:,}", f"{buckets:,}", f"{bins:.1f}", *times.values()])
    print_table(
        f"Build 1m rollups from raw rows into a table, {SERIES} series (ms)",
        [
            "shape", "raw rows", "buckets", "bins/bucket", "scalars only", "every bucket a sketch",
            "values kept while <= 12 (chosen)", "count/sum/min/max + chosen (sort agg)",
        ],
        out,
    )  # fmt: skip


def bench_sizes(bench: Bench) -> None:
    """Bytes per 1m bucket of each encoding: pg_column_size is what the heap stores, headers included."""
    out = []
    for name, (columns, size, _) in REPRESENTATIONS.items():
        row: list[Any] = [name]
        for index in range(len(SHAPES)):
            bench.execute(f"CREATE TEMP TABLE rep AS SELECT {columns} FROM rollup_{index}")
            row.append(f"{bench.execute(f'SELECT avg({size}) FROM rep')[0][0]:.1f}")
            bench.execute("DROP TABLE rep")
        out.append(row)
    stored = ("coalesce(pg_column_size(exact_values), 0) + coalesce(pg_column_size(sketch_keys), 0)"
              " + coalesce(pg_column_size(sketch_counts), 0)")
    out.append([f"values float8[] while <= {EXACT_MAX_COUNT}, else int4[] + int4[] (chosen)",
                *(f"{bench.execute(f'SELECT avg({stored}) FROM kept_{i}')[0][0]:.1f}" for i in range(len(SHAPES)))])
    print_table(
        "Sketch bytes per 1m bucket (avg pg_column_size of the sketch columns)", ["encoding", *SHAPES], out
    )


def bench_key_expression(bench: Bench) -> None:
    """Per-row cost of the key: ln() fast path with exact fallback vs always decoding float bits."""
    raw = "raw_1"
    n = bench.execute(f"SELECT count(*) FROM {raw}")[0][0]
    exact = f"({sketch_sql.KEY_OFFSET} + {sketch_sql._magnitude_key_sql('s.value')})"
    cases = {
        "sum(value): scan baseline": "sum(s.value)",
        "ceil(ln(v) / ln(gamma)): libm only, not exact": "sum(ceil(ln(s.value) / 0.0198042)::int)",
        "bin_key_sql(v): ln fast path + exact fallback": f"sum({bin_key_sql('s.value')})",
        "always decode IEEE bits (exact, no ln)": f"sum({exact})",
    }
    times = bench.compare(
        {name: bench.query(f"SELECT {expr} FROM {raw} AS s") for name, expr in cases.items()}
    )
    base = times["sum(value): scan baseline"]
    out = [[name, ms, f"{(ms - base) * 1e6 / n:.0f}"] for name, ms in times.items()]
    print_table(
        f"Key expression over {n:,} latency values (ms)", ["expression", "ms", "ns/row over scan"], out
    )


def bench_range(bench: Bench, range_buckets: int) -> None:
    """100 series x 720 one-minute latency buckets: merges, re-rolls and quantile extraction."""
    bench.load_raw("raw_range", "latency ms 60/min", SERIES, range_buckets * 60)
    build = build_sketches_sql(source="raw_range", bucket_expr=minute_bucket("time"))
    start = time.perf_counter()
    bench.execute("SET enable_hashagg = off")
    bench.execute(f"CREATE TEMP TABLE rollup_range AS {build}")
    bench.execute("RESET enable_hashagg")
    build_ms = (time.perf_counter() - start) * 1000
    bench.execute("ANALYZE rollup_range")
    rows = SERIES * range_buckets * 60
    print(f"\nBuilt {SERIES} x {range_buckets} 1m buckets from {rows:,} latency rows in {build_ms:,.0f} ms")

    cases: dict[str, Callable[[], object]] = {}
    for name, (columns, _, unnest) in REPRESENTATIONS.items():
        bench.execute(f"DROP TABLE IF EXISTS rep_{len(cases)}")
        bench.execute(
            f"CREATE TEMP TABLE rep_{len(cases)} AS SELECT series_id, bucket, {columns} FROM rollup_range"
        )
        sql = (
            f"SELECT s.series_id, u.k, sum(u.n) FROM rep_{len(cases)} AS s CROSS JOIN {unnest} GROUP BY 1, 2"
        )
        cases[f"unnest + sum per key, {name}"] = bench.query(sql)
    merged = merge_sketches_sql(
        source="rollup_range", group_by={"series_id": "s.series_id"}, counts_type="bigint"
    )
    five = f"date_bin('5 minutes', s.bucket, {ORIGIN})"
    reroll = merge_sketches_sql(source="rollup_range", group_by={"series_id": "s.series_id", "bucket": five})
    cases["merge_sketches_sql by series (arrays to client)"] = bench.query(merged)
    cases["re-roll 1m -> 5m into a table (planner)"] = bench.materialize(reroll)
    cases["re-roll 1m -> 5m into a table (sort agg)"] = bench.materialize(reroll, "enable_hashagg = off")
    cases["re-roll 1m -> 5m into a table (work_mem 256MB)"] = bench.materialize(reroll, "work_mem = '256MB'")
    print_table(
        f"Merge {SERIES} series x {range_buckets} buckets (ms)",
        ["query", "ms"],
        list(map(list, bench.compare(cases).items())),
    )

    def sql_quantiles(source: str) -> Callable[[], object]:
        picks = quantiles_sql("r.sketch_keys", "r.sketch_counts", "r.exact_values", "%s")
        return lambda: bench.conn.execute(
            f"SELECT r.series_id, {picks} FROM ({source}) AS r", [QUANTILES]
        ).fetchall()

    def python_quantiles(source: str) -> Callable[[], object]:
        def run() -> object:
            # Binary transfer: int[] parsing is the client's main cost for many small arrays.
            with bench.conn.cursor(binary=True) as cursor:
                rows = cursor.execute(f"SELECT sketch_keys, sketch_counts FROM ({source}) AS r").fetchall()
            return [QuantileSketch.from_arrays(k, c).quantiles(QUANTILES) for k, c in rows]

        return run

    def python_merge() -> object:
        sketches: dict[int, QuantileSketch] = {}
        with bench.conn.cursor(binary=True) as cursor:
            for series_id, k, c in cursor.execute(
                "SELECT series_id, sketch_keys, sketch_counts FROM rollup_range"
            ):
                sketches.setdefault(series_id, QuantileSketch()).merge(QuantileSketch.from_arrays(k, c))
        return [s.quantiles(QUANTILES) for s in sketches.values()]

    buckets = f"{SERIES * range_buckets:,}"
    times = bench.compare(
        {
            "whole range: SQL merge + SQL quantiles_sql": sql_quantiles(merged),
            "whole range: SQL merge + Python quantiles": python_quantiles(merged),
            f"whole range: fetch {buckets} bucket arrays + Python merge": python_merge,
            f"per bucket: SQL quantiles_sql on {buckets} rows": sql_quantiles("SELECT * FROM rollup_range"),
            f"per bucket: fetch {buckets} rows + Python quantiles": python_quantiles(
                "SELECT * FROM rollup_range"
            ),
        }
    )
    print_table(
        f"p50/p95/p99 of {SERIES} series over {range_buckets} buckets, results in Python (ms)",
        ["strategy", "ms"],
        list(map(list, times.items())),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("SKETCH_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work-mem", default="64MB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--range-buckets", type=int, default=RANGE_BUCKETS)
    args = parser.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        bench = Bench(conn, args.repeat)
        # Must precede the first TEMP table: keeps the scratch tables in memory like a warm shared_buffers,
        # so the first case to scan a freshly written table is not charged for flushing it.
        bench.execute("SET temp_buffers = '1GB'")
        bench.execute(f"SET work_mem = '{args.work_mem}'")
        bench.execute("SET max_parallel_workers_per_gather = 0")
        bench.execute("SET jit = off")
        version = bench.execute("SHOW server_version")[0][0]
        print(
            f"PostgreSQL {version}; work_mem={args.work_mem}; 1 core per query, JIT off; min of {args.repeat}"
        )
        print(f"host load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        bench_build(bench, args.rows)
        bench_sizes(bench)
        bench_key_expression(bench)
        bench_range(bench, args.range_buckets)


if __name__ == "__main__":
    main()
