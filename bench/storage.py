"""Storage benchmark: codecs for closed raw partitions, bytes per raw value, compression throughput, and
raw reads over a compressed day against the same read over row data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/storage.py [--hosts 100] [--agent-hosts 20] [--runs 50] [--gorilla-series 100]
                                        [--db-name fiberstack_bench_storage] [--keep-db]

It creates (drops first) the database ``--db-name`` on the server of ``DATABASE_URL``, migrates it, and:

1. **Codec table** -- per series and day (one chunk), two data sets:

   * TSBS "devops cpu-only": ``--hosts`` hosts x ten ``usage_*`` fields every 10 s for one day, each a
     clamped random walk written as an integer (TSBS's ``ToPointAllInt64``, ``bench/_tsbs.py``);
   * demo-agent-like: ``--agent-hosts`` hosts x 30 series every 10 s shaped like
     ``apps/metrics/agent/collectors.py`` -- cpu and memory percentages rounded to 3 decimals, load
     averages, memory bytes, monotonic disk and network counters;

   encoded with pcodec, zstandard (raw arrays; delta timestamps with byte-shuffled values), a Gorilla
   size count (delta-of-delta timestamps, XOR values, Pelkonen et al. 2015: bits counted by its rules on
   the first ``--gorilla-series`` series, pure Python) and PostgreSQL ``int8[]``/``float8[]`` columns with
   lz4 TOAST (measured in the database with ``pg_total_relation_size``, primary key included).
   Payload bytes per value, encode and decode speed.
2. **End to end** on the real schema: both data sets loaded into ``metrics_sample`` (day D-3 TSBS, D-4
   agent) plus day D-2 of TSBS as row data; ``compress_partition`` on D-4 and D-3; bytes per value of the
   row partition and of ``metrics_sample_compressed`` (``pg_total_relation_size``: table, TOAST and
   indexes), compression throughput.
3. **q1 over a compressed day**: q1's shape -- max of one host's ``usage_user`` per minute over one hour --
   forced onto raw samples (``read.fetch`` with ``Plan(tier="raw", step=60)``, the code path of
   ``GET /api/v1/metrics?...&tier=raw&step=60&agg=max``) over an hour of the compressed day and the same
   hour of the row day, ``--runs`` times each (5 warm-up), median and p95.
4. **Rollup tiers** (``--rollup-days`` days of both data sets, or only this section with ``--rollups-only``):
   the raw days rolled up by ``jobs.run_rollups`` (1m throughput in raw values per second), then per tier
   bytes per raw value summarised as rows (every partition: ``pg_total_relation_size``) and after every
   partition holding data is compressed (``rollups.compressed.compress_partition``, as the job does once a
   partition is closed and final; ``metrics_rollup_<tier>_compressed`` with TOAST and indexes), and the
   read latency of q1's shape on the 1m tier (max per minute, one series, one hour) and q2's (mean per
   hour, all TSBS hosts' ``usage_user``, 12 hours, 1h tier) through ``read.fetch`` before and after.
   Before the 1m partitions are compressed whole, the last day is first treated as the open day of a live
   installation: its hours but the last ``--open-rows-hours`` compressed one transaction per hour
   (``rollups.compressed.compress_range``, what the hourly pass does) and the partition compacted (``VACUUM
   FULL``: a live partition reuses the space each hour's DELETE frees for the hours written after it), then
   bytes per raw value of that day (rows left + hour chunks) and of the hour chunks alone; the reads (with a
   dashboard's shape too: max per 5 min of ten series over the open day's last 12 hours, 1m tier) are timed
   over rows, over the open day so compressed, and after every partition is compressed whole.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import database_url_for, drop_database, recreate_database  # noqa: E402

INTERVAL_US = 10_000_000
TICKS = 8640  # one day at 10 s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100, help="TSBS hosts (ten series each)")
    parser.add_argument("--agent-hosts", type=int, default=20, help="demo-agent-like hosts (30 series each)")
    parser.add_argument("--runs", type=int, default=50, help="timed reads per query")
    parser.add_argument("--gorilla-series", type=int, default=100, help="series whose Gorilla size is counted")
    parser.add_argument("--db-name", default="fiberstack_bench_storage")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--rollup-days", type=int, default=2, help="days of both data sets for the rollup tiers")
    parser.add_argument("--rollups-only", action="store_true", help="only the rollup tiers section")
    parser.add_argument("--open-rows-hours", type=int, default=3,
                        help="hours of the open 1m day left as rows by the hourly compression figure")
    return parser.parse_args(argv)


# -- data -----------------------------------------------------------------------------------------------------


def tsbs_day(hosts: int, seed: int = 1) -> np.ndarray:
    """(series, TICKS) values: TSBS's clamped N(0, 1) random walk from U[0, 100), as int64 -> float64."""
    rng = np.random.default_rng(seed)
    state = rng.random(hosts * 10) * 100.0
    out = np.empty((hosts * 10, TICKS))
    steps = rng.normal(size=(TICKS, hosts * 10))
    for tick in range(TICKS):
        state = np.clip(state + steps[tick], 0.0, 100.0)
        out[:, tick] = np.trunc(state)  # TSBS writes int64(value)
    return out


def agent_day(hosts: int, seed: int = 2) -> np.ndarray:
    """(series, TICKS) values shaped like the demo agent's collectors (30 series per host)."""
    rng = np.random.default_rng(seed)
    rows = []
    t = np.arange(TICKS)
    for _ in range(hosts):
        for _ in range(10):  # cpu usage_* percent, 3 decimals
            level = rng.random() * 30
            rows.append(np.round(np.clip(level + np.cumsum(rng.normal(0, 0.5, TICKS)) * 0.1
                                         + rng.exponential(2, TICKS), 0, 100), 3))
        for _ in range(3):  # load1/5/15
            rows.append(np.round(np.abs(1 + 0.5 * np.sin(t / 700 + rng.random() * 6) + rng.normal(0, 0.05, TICKS)), 3))
        for _ in range(5):  # memory bytes (pages of 4 KiB) and percentages
            rows.append((2_000_000_000 + np.cumsum(rng.integers(-2000, 2000, TICKS)) * 4096).astype(float))
        for _ in range(2):
            rows.append(np.round(40 + np.cumsum(rng.normal(0, 0.01, TICKS)), 3))
        rows.append(np.round(55 + t * 1e-5 + rng.normal(0, 1e-4, TICKS), 3))  # disk used percent
        for _ in range(9):  # monotonic disk and network counters
            rows.append(np.cumsum(rng.poisson(rng.integers(1, 5000), TICKS)).astype(float) + rng.integers(0, 10**9))
    return np.array(rows)


def day_times(day_start_us: int) -> np.ndarray:
    return day_start_us + np.arange(TICKS, dtype=np.int64) * INTERVAL_US


# -- codecs ---------------------------------------------------------------------------------------------------


def _shuffle(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a.view(np.uint8).reshape(-1, 8).T).tobytes()


def _unshuffle(b: bytes, dtype: type) -> np.ndarray:
    return np.frombuffer(b, dtype=np.uint8).reshape(8, -1).T.copy().view(dtype).ravel()


def codec_pcodec() -> tuple[Callable, Callable]:
    from apps.metrics.storage import codec

    def enc(t: np.ndarray, v: np.ndarray) -> tuple[bytes, bytes]:
        return codec.encode_times(t), codec.encode_values(v)

    def dec(blobs: tuple[bytes, bytes]) -> tuple[np.ndarray, np.ndarray]:
        return codec.decode_times(blobs[0]), codec.decode_values(blobs[1])

    return enc, dec


def codec_zstd_raw(level: int = 3) -> tuple[Callable, Callable]:
    import zstandard  # the codec table only (not in requirements/base.txt; --rollups-only runs without it)

    c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()

    def enc(t: np.ndarray, v: np.ndarray) -> tuple[bytes, bytes]:
        return c.compress(t.tobytes()), c.compress(v.tobytes())

    def dec(blobs: tuple[bytes, bytes]) -> tuple[np.ndarray, np.ndarray]:
        return np.frombuffer(d.decompress(blobs[0]), np.int64), np.frombuffer(d.decompress(blobs[1]), np.float64)

    return enc, dec


def codec_zstd_delta_shuffle(level: int = 3) -> tuple[Callable, Callable]:
    import zstandard  # the codec table only (not in requirements/base.txt; --rollups-only runs without it)

    c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()

    def enc(t: np.ndarray, v: np.ndarray) -> tuple[bytes, bytes]:
        return c.compress(_shuffle(np.diff(t, prepend=0))), c.compress(_shuffle(v))

    def dec(blobs: tuple[bytes, bytes]) -> tuple[np.ndarray, np.ndarray]:
        return (np.cumsum(_unshuffle(d.decompress(blobs[0]), np.int64)),
                _unshuffle(d.decompress(blobs[1]), np.float64))

    return enc, dec


def gorilla_bits(t: list[int], bits: list[int]) -> int:
    """Size in bits of Gorilla's encoding (64-bit first time and value, delta-of-delta buckets, XOR with
    leading/trailing zero control bits)."""
    size = 64 + 64
    prev_delta, prev_lead, prev_trail = 0, -1, -1
    for i in range(1, len(t)):
        delta = t[i] - t[i - 1]
        dod = delta - prev_delta
        prev_delta = delta
        if dod == 0:
            size += 1
        elif -63 <= dod <= 64:
            size += 2 + 7
        elif -255 <= dod <= 256:
            size += 3 + 9
        elif -2047 <= dod <= 2048:
            size += 4 + 12
        else:
            size += 4 + 32
        xor = bits[i] ^ bits[i - 1]
        if xor == 0:
            size += 1
            continue
        lead = 64 - xor.bit_length()
        trail = (xor & -xor).bit_length() - 1
        lead = min(lead, 31)
        if prev_lead >= 0 and lead >= prev_lead and trail >= prev_trail:
            size += 2 + (64 - prev_lead - prev_trail)
        else:
            size += 2 + 5 + 6 + (64 - lead - trail)
            prev_lead, prev_trail = lead, trail
    return size


def measure_codec(name: str, enc: Callable, dec: Callable, t: np.ndarray,
                  values: np.ndarray) -> tuple[str, float, float, float]:
    blobs = []
    started = time.perf_counter()
    for row in values:
        blobs.append(enc(t, row))
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    for blob, row in zip(blobs, values, strict=True):
        dt_, dv = dec(blob)
        assert dt_.tobytes() == t.tobytes() and dv.tobytes() == row.tobytes(), name
    decode_s = time.perf_counter() - started
    n = values.size
    size = sum(len(a) + len(b) for a, b in blobs)
    return name, size / n, n / encode_s / 1e6, n / decode_s / 1e6


def measure_gorilla(t: np.ndarray, values: np.ndarray, series: int) -> tuple[str, float, float, float]:
    tl = (t // 1000).tolist()  # Gorilla's timestamps are in ms at most: use ms here
    total = 0
    started = time.perf_counter()
    for row in values[:series]:
        total += gorilla_bits(tl, row.view(np.int64).tolist())
    spent = time.perf_counter() - started
    n = TICKS * min(series, len(values))
    return f"Gorilla (size count, {min(series, len(values))} series)", total / 8 / n, n / spent / 1e6, float("nan")


def measure_pg_arrays(conninfo: str, t: np.ndarray, values: np.ndarray) -> tuple[str, float, float, float]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_arrays")
        conn.execute("CREATE TABLE bench_arrays (series_id int, first_time bigint, times int8[], vals float8[], "
                     "PRIMARY KEY (series_id, first_time))")
        conn.execute("ALTER TABLE bench_arrays ALTER COLUMN times SET COMPRESSION lz4, "
                     "ALTER COLUMN vals SET COMPRESSION lz4")
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_arrays FROM STDIN") as copy:
            tt = "{" + ",".join(map(str, t.tolist())) + "}"
            for sid, row in enumerate(values):
                copy.write_row((sid, int(t[0]), tt, "{" + ",".join(map(repr, row.tolist())) + "}"))
        spent = time.perf_counter() - started
        size = conn.execute("SELECT pg_total_relation_size('bench_arrays')").fetchone()[0]
        started = time.perf_counter()
        conn.execute("SELECT sum(cardinality(vals)) FROM bench_arrays").fetchone()
        read = time.perf_counter() - started
        conn.execute("DROP TABLE bench_arrays")
    return "PostgreSQL int8[] + float8[], lz4 TOAST (whole table)", size / values.size, values.size / spent / 1e6, \
        values.size / read / 1e6


def codec_table(args: argparse.Namespace, conninfo: str, datasets: dict[str, np.ndarray], t: np.ndarray) -> None:
    print("\n## Codec table (one chunk = one series x one day at 10 s)\n")
    print("| data | codec | B/value | encode M values/s | decode M values/s |")
    print("|---|---|---:|---:|---:|")
    for label, values in datasets.items():
        results = [
            measure_codec("pcodec 1.1.0 (level 8)", *codec_pcodec(), t, values),
            measure_codec("zstd-3 raw int64 + float64", *codec_zstd_raw(3), t, values),
            measure_codec("zstd-3 delta times, byte-shuffled values", *codec_zstd_delta_shuffle(3), t, values),
            measure_codec("zstd-19 delta times, byte-shuffled values", *codec_zstd_delta_shuffle(19), t, values),
            measure_gorilla(t, values, args.gorilla_series),
            measure_pg_arrays(conninfo, t, values),
        ]
        for name, bpv, enc, dec in results:
            print(f"| {label} | {name} | {bpv:.3f} | {enc:.2f} | {dec:.2f} |", flush=True)


# -- end to end -----------------------------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, check=True,
                   capture_output=True)


def setup_django(database_url: str) -> None:
    os.environ.update(DJANGO_SETTINGS_MODULE="fiberstack.settings.prod", DATABASE_URL=database_url,
                      SECRET_KEY=os.environ.get("SECRET_KEY", "bench-storage-not-secret-" + "x" * 40),
                      SECURE_SSL_REDIRECT="false", ALLOWED_HOSTS="127.0.0.1", DEBUG="false", LOG_LEVEL="WARNING")
    import django

    django.setup()


def load_day(day: dt.date, first_series: int, values: np.ndarray) -> float:
    """COPY one day of every series into metrics_sample (through ``copy_samples``); returns seconds."""
    from django.db import connection, transaction

    from apps.metrics import storage

    storage.ensure_partitions(days_ahead=0, today=day + dt.timedelta(days=1))
    start_us = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) * 1_000_000
    t = day_times(start_us)
    started = time.perf_counter()
    batch = 100  # series per COPY
    for at in range(0, len(values), batch):
        rows = values[at:at + batch]
        with transaction.atomic(), connection.cursor() as cursor:
            sids = np.repeat(np.arange(first_series + at, first_series + at + len(rows)), TICKS)
            storage.copy_samples(cursor, np.tile(t, len(rows)).tolist(), sids.tolist(), rows.ravel().tolist())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_sample")
    return time.perf_counter() - started


def relation_bytes(name: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [name])
        return int(cursor.fetchone()[0])


def compress(day: dt.date) -> tuple[dict[str, int], float]:
    from django.db import connection, transaction

    from apps.metrics.storage import compressed

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        done = compressed.compress_partition(cursor, day)
    return done, time.perf_counter() - started


def time_q1(starts: dict[str, dt.datetime], series_id: int, runs: int) -> dict[str, tuple[float, float, int]]:
    """Median and p95 ms and points of each q1, the queries interleaved run by run (a busy machine's noise
    falls on both alike)."""
    from apps.metrics.read.fetch import fetch
    from apps.metrics.read.plan import Plan

    plans = {label: Plan(tier="raw", step=60, start=start, end=start + dt.timedelta(hours=1) - dt.timedelta(
        microseconds=1)) for label, start in starts.items()}
    timings: dict[str, list[float]] = {label: [] for label in plans}
    points: dict[str, int] = {}
    for i in range(runs + 5):
        for label, plan in plans.items():
            started = time.perf_counter()
            answer = fetch(plan, [series_id], "max", [])
            spent = (time.perf_counter() - started) * 1000
            if i >= 5:
                timings[label].append(spent)
            points[label] = len(answer.points.get(series_id, []))
    out = {}
    for label, values in timings.items():
        values.sort()
        out[label] = (statistics.median(values), values[int(0.95 * (len(values) - 1))], points[label])
    return out


def _tier_bytes(table: str) -> int:
    """Table, TOAST and indexes of a table and all its partitions (a partitioned parent itself is 0)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass) + coalesce((SELECT "
                       "sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = %s::regclass), 0)",
                       [table, table])
        return int(cursor.fetchone()[0])


def _time_reads(plans: dict[str, tuple[Any, list[int], str]], runs: int) -> dict[str, tuple[float, float]]:
    """Median and p95 ms of each (plan, series, agg) through ``read.fetch``, interleaved, 5 warm-ups."""
    from apps.metrics.read.fetch import fetch

    timings: dict[str, list[float]] = {label: [] for label in plans}
    for i in range(runs + 5):
        for label, (plan, series, agg) in plans.items():
            started = time.perf_counter()
            fetch(plan, series, agg, [])
            if i >= 5:
                timings[label].append((time.perf_counter() - started) * 1000)
    out = {}
    for label, values in timings.items():
        values.sort()
        out[label] = (statistics.median(values), values[int(0.95 * (len(values) - 1))])
    return out


def open_day(tier: Any, day: dt.date, rows_hours: int) -> dict[str, float] | None:
    """The 1m partition of ``day`` as a live installation's open day: every hour but the last ``rows_hours``
    compressed one transaction each (``compress_range``); its bytes per raw value then (None on code without
    hourly compression)."""
    from django.db import connection, transaction

    from apps.metrics.rollups import compressed
    from apps.metrics.rollups import storage as rollup_storage

    if not hasattr(compressed, "compress_range"):
        return None
    name = rollup_storage.partition_name(tier, day)
    lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    cut = lo + dt.timedelta(hours=24 - rows_hours)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(sum(count), 0), coalesce(sum(count) FILTER (WHERE bucket < %s), 0) "
                       f"FROM {name}", [cut])
        day_values, hour_values = (int(v) for v in cursor.fetchone())
    rows = 0
    started = time.perf_counter()
    for hour in range(24 - rows_hours):
        with transaction.atomic(), connection.cursor() as cursor:
            rows += compressed.compress_range(cursor, tier, name, lo + dt.timedelta(hours=hour),
                                              lo + dt.timedelta(hours=hour + 1))["rows"]
    spent = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM FULL {name}")
    chunk_bytes, row_bytes = _tier_bytes(compressed.table(tier)), relation_bytes(name)
    return {"hours": 24 - rows_hours, "rows": rows, "seconds": spent, "values": day_values,
            "hour_values": hour_values, "chunk_bytes": chunk_bytes, "row_bytes": row_bytes}


def rollup_tiers(args: argparse.Namespace, today: dt.date) -> None:
    """Section 4: rollups of ``--rollup-days`` days, bytes per raw value per tier as rows and compressed."""
    from django.db import connection, transaction

    from apps.metrics.read.plan import Plan
    from apps.metrics.rollups import jobs
    from apps.metrics.rollups import storage as rollup_storage
    from apps.metrics.rollups.tiers import TIERS

    # Days the raw sections do not use (D-2..D-4), inside the week the 1m job starts from (at most 3).
    days = [today - dt.timedelta(days=n) for n in range(min(args.rollup_days, 3) + 4, 4, -1)]
    agent_first = 1_000_000
    values = 0
    for k, day in enumerate(days):
        tsbs, agent = tsbs_day(args.hosts, seed=10 + k), agent_day(args.agent_hosts, seed=20 + k)
        load_day(day, 1, tsbs)
        load_day(day, agent_first, agent)
        values += tsbs.size + agent.size
    started = time.perf_counter()
    reports = jobs.run_rollups(now=dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC), budget_seconds=36_000)
    spent = time.perf_counter() - started
    from apps.metrics.rollups.models import RollupState

    per_tier = {s.tier: s.last_duration_ms / 1000 for s in RollupState.objects.all()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(count) FROM metrics_rollup_1m")
        rolled = int(cursor.fetchone()[0])
    print(f"\n## Rollup tiers ({len(days)} days: {args.hosts * 10} TSBS + {args.agent_hosts * 30} demo-agent-like "
          f"series, {values:,} raw values)\n")
    print(f"run_rollups: {spent:.1f} s in all; 1m from raw {per_tier['1m']:.1f} s = "
          f"{rolled / per_tier['1m']:,.0f} raw values/s; " + ", ".join(f"{t} {per_tier[t]:.1f} s" for t in
                                                                       ("5m", "1h", "1d")))
    for report in reports:
        print(f"  {report.summary()}")
    with connection.cursor() as cursor:
        for tier in TIERS:
            cursor.execute(f"ANALYZE {tier.table}")
    last = days[-1]
    noon = dt.datetime.combine(last, dt.time(12), tzinfo=dt.UTC)
    plans = {
        "q1 shape: 1m tier, max per minute, 1 series, 1 h": (
            Plan(tier="1m", step=60, start=noon, end=noon + dt.timedelta(hours=1) - dt.timedelta(microseconds=1)),
            [1], "max"),
        f"q2 shape: 1h tier, mean per hour, {args.hosts} series, 12 h": (
            Plan(tier="1h", step=3600, start=noon - dt.timedelta(hours=12), end=noon - dt.timedelta(microseconds=1)),
            list(range(1, args.hosts * 10 + 1, 10)), "avg"),
        "dashboard shape: 1m tier, max per 5 min, 10 series, 12 h": (
            Plan(tier="1m", step=300, start=noon, end=noon + dt.timedelta(hours=12) - dt.timedelta(microseconds=1)),
            list(range(1, 101, 10)), "max"),
    }
    before_reads = _time_reads(plans, args.runs)
    sizes: dict[str, dict[str, float]] = {}
    opened: dict[str, float] | None = None
    hour_reads: dict[str, tuple[float, float]] = {}
    try:
        from apps.metrics.rollups import compressed
    except ImportError:  # the code before compressed rollups: rows only
        compressed = None
    for tier in TIERS:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*), coalesce(sum(count), 0) FROM {tier.table}")
            buckets, summarised = cursor.fetchone()
        sizes[tier.name] = {"buckets": buckets, "values": int(summarised), "rows": _tier_bytes(tier.table)}
        if compressed is None:
            continue
        if tier.name == "1m":
            opened = open_day(tier, last, args.open_rows_hours)
            hour_reads = _time_reads(plans, args.runs) if opened is not None else {}
        started = time.perf_counter()
        with connection.cursor() as cursor:
            parts = rollup_storage.existing_partitions(cursor, tier.table)
        for name, bounds in sorted(parts.items()):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")
                if cursor.fetchone()[0]:
                    compressed.compress_partition(cursor, tier, name, *bounds)
        sizes[tier.name]["seconds"] = time.perf_counter() - started
        if tier.name == "1m" and opened is not None:
            # The fold deleted the open day's hour chunks: dead tuples, which autovacuum would make room of.
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM FULL {compressed.table(tier)}")
        # The chunks alone: what is left of the row table is the partitions ahead (empty, a few pages each).
        sizes[tier.name]["compressed"] = _tier_bytes(compressed.table(tier))
    print("\n| tier | buckets | raw values summarised | rows: bytes | rows: B/raw value | compressed: bytes | "
          "compressed: B/raw value | compression time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, info in sizes.items():
        after = (f"{info['compressed']:,.0f} | **{info['compressed'] / info['values']:.3f}** | {info['seconds']:.1f} s"
                 if "compressed" in info else "- | - | -")
        print(f"| {name} | {info['buckets']:,} | {info['values']:,} | {info['rows']:,} | "
              f"{info['rows'] / info['values']:.2f} | {after} |")
    if opened is not None:
        total = opened["chunk_bytes"] + opened["row_bytes"]
        print(f"\n1m, open day with closed hours compressed ({last}: hours 0-{opened['hours'] - 1} as hour chunks, "
              f"the last {24 - opened['hours']} as rows; {opened['values']:,} raw values summarised):\n")
        print("| what | bytes | B/raw value |")
        print("|---|---:|---:|")
        print(f"| rows left (`VACUUM FULL`) | {opened['row_bytes']:,.0f} | "
              f"{opened['row_bytes'] / (opened['values'] - opened['hour_values']):.2f} |")
        print(f"| hour chunks ({opened['hours']} h) | {opened['chunk_bytes']:,.0f} | "
              f"{opened['chunk_bytes'] / opened['hour_values']:.3f} |")
        print(f"| **the open day** | {total:,.0f} | **{total / opened['values']:.2f}** |")
        print(f"\nhourly pass: {opened['hours']} hours, {opened['rows']:,.0f} rows in {opened['seconds']:.1f} s "
              f"({opened['rows'] / opened['seconds']:,.0f} rows/s)")
    if compressed is not None:
        after_reads = _time_reads(plans, args.runs)
        print("\n| read (read.fetch) | rows: median / p95 ms | open day hours compressed: median / p95 ms | "
              "compressed: median / p95 ms |")
        print("|---|---:|---:|---:|")
        for label in plans:
            hourly = (f"{hour_reads[label][0]:.2f} / {hour_reads[label][1]:.2f}" if label in hour_reads else "-")
            print(f"| {label} | {before_reads[label][0]:.2f} / {before_reads[label][1]:.2f} | {hourly} | "
                  f"{after_reads[label][0]:.2f} / {after_reads[label][1]:.2f} |", flush=True)
    else:
        for label, (median, p95) in before_reads.items():
            print(f"| {label} | {median:.2f} / {p95:.2f} | - |", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("set DATABASE_URL (any database on the server; the bench creates its own)")
    recreate_database(base, args.db_name)
    url = database_url_for(base, args.db_name)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="fiberstack.settings.prod", DATABASE_URL=url,
               SECRET_KEY="bench-storage-not-secret-" + "x" * 40, SECURE_SSL_REDIRECT="false", DEBUG="false")
    try:
        manage(env, "migrate", "--no-input")
        today = dt.datetime.now(dt.UTC).date()
        if args.rollups_only:
            setup_django(url)
            rollup_tiers(args, today)
            return 0
        tsbs, agent = tsbs_day(args.hosts), agent_day(args.agent_hosts)
        today = dt.datetime.now(dt.UTC).date()
        t = day_times(int(dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC).timestamp()) * 1_000_000)
        codec_table(args, url, {f"TSBS cpu-only, {len(tsbs)} series": tsbs,
                                f"demo-agent-like, {len(agent)} series": agent}, t)

        setup_django(url)
        row_day, tsbs_compressed, agent_compressed = (today - dt.timedelta(days=n) for n in (2, 3, 4))
        agent_first = 1_000_000
        load_s = load_day(tsbs_compressed, 1, tsbs)
        load_day(row_day, 1, tsbs)
        load_day(agent_compressed, agent_first, agent)
        from apps.metrics.storage.partitioned import partition_name

        row_bytes = relation_bytes(partition_name(row_day))
        print("\n## End to end (real schema, pg_total_relation_size: table + TOAST + indexes)\n")
        print("| data | storage | values | bytes | B/value | compression time | values/s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        print(f"| TSBS cpu-only | rows (`{partition_name(row_day)}`) | {tsbs.size:,} | {row_bytes:,} | "
              f"{row_bytes / tsbs.size:.1f} | - | load {tsbs.size / load_s:,.0f} |")
        done, spent = compress(agent_compressed)
        agent_bytes = relation_bytes("metrics_sample_compressed")
        print(f"| demo-agent-like | `metrics_sample_compressed` | {done['rows']:,} | {agent_bytes:,} | "
              f"{agent_bytes / done['rows']:.3f} | {spent:.1f} s | {done['rows'] / spent:,.0f} |")
        done, spent = compress(tsbs_compressed)
        tsbs_bytes = relation_bytes("metrics_sample_compressed") - agent_bytes
        print(f"| TSBS cpu-only | `metrics_sample_compressed` | {done['rows']:,} | {tsbs_bytes:,} | "
              f"{tsbs_bytes / done['rows']:.3f} | {spent:.1f} s | {done['rows'] / spent:,.0f} |", flush=True)

        print(f"\n## q1 shape on raw (max per minute, 1 series, 1 h; read.fetch, {args.runs} runs)\n")
        print("| data | median ms | p95 ms | points |")
        print("|---|---:|---:|---:|")
        starts = {f"row day ({row_day})": dt.datetime.combine(row_day, dt.time(12), tzinfo=dt.UTC),
                  f"compressed day ({tsbs_compressed})": dt.datetime.combine(tsbs_compressed, dt.time(12),
                                                                             tzinfo=dt.UTC)}
        for label, (median, p95, points) in time_q1(starts, 1, args.runs).items():
            print(f"| {label} | {median:.2f} | {p95:.2f} | {points} |", flush=True)
        rollup_tiers(args, today)
    finally:
        if not args.keep_db:
            if "django" in sys.modules and os.environ.get("DATABASE_URL") == url:
                from django.db import connections

                connections.close_all()
            drop_database(base, args.db_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
