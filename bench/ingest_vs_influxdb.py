"""FiberStack's line-protocol door against InfluxDB 1.x, same workload, same client, same run.

    .venv/bin/python -m fiberstack.devstack exec .venv/bin/python bench/ingest_vs_influxdb.py \\
        [--hosts 100] [--hours 24] [--batch 5000] [--clients 2] [--workers CORES] [--rounds 2] [--influxd PATH]

Needs an ``influxd`` of InfluxDB 1.x (Debian/Ubuntu: ``apt-get install influxdb``; its system service is
not used and may stay stopped). The bench starts a private one: a temporary directory holds its config,
meta, data and WAL, HTTP is bound to a free port on 127.0.0.1, usage reporting, the ``_internal``
monitor database, UDP/Graphite and the query/HTTP logs are off; it is killed and the directory removed at
the end. FiberStack runs as in ``bench/ingest.py`` (a fresh database, production settings, ``--workers``
daphne processes sharing one socket; the default is one per core, as ``make run`` serves).

The TSBS cpu-only bodies are generated once, then each round posts all of them to FiberStack and then to
InfluxDB (``POST /write?db=bench&precision=ns`` after ``CREATE DATABASE``), with the same ``Poster``
(``--clients`` keep-alive connections). Before each round both sides start empty: InfluxDB's database is
dropped and re-created, FiberStack's samples table and late-data log are truncated (the 1,000 series stay,
as they would on a server that has been running). After each side, the stored count is read back --
``count(*)`` of ``metrics_sample`` for FiberStack, ``SELECT count(*) FROM cpu`` (summed over the ten
fields) for InfluxDB -- and must equal the values sent. Exit status 1 if anything was refused or lost.

The table gives, per round, values/s of each side and their ratio, request p50, server CPU seconds
(FiberStack: the daphne workers plus the PostgreSQL backends of its database, sampled as ``bench/ingest.py``
does; InfluxDB: the influxd process) and values per server CPU-second with their ratio -- the one figure
that stays comparable when other processes share the machine (wall-clock rates then follow the load,
and the two servers do not suffer from it equally).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _tsbs
from _server import BenchServer
from ingest import BackendSampler, Poster, cpu_seconds, quantile

INFLUX_DB = "bench"
INFLUX_WRITE_PATH = f"/write?db={INFLUX_DB}&precision=ns"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--batch", type=int, default=5000, help="lines per request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client connections, both sides")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="daphne workers (default: one per core, as make run)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations FiberStack, InfluxDB")
    parser.add_argument("--influxd", default=shutil.which("influxd") or "/usr/bin/influxd")
    parser.add_argument("--db-name", default="fiberstack_bench_vs")
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--settings", default="fiberstack.settings.prod")
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL (e.g. run under `python -m fiberstack.devstack exec`)")
    if not Path(args.influxd).exists():
        parser.error(f"no influxd at {args.influxd}: install InfluxDB 1.x (apt-get install influxdb) or give --influxd")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InfluxServer:
    """A private influxd 1.x: its own config and storage in a temporary directory, HTTP on a free port."""

    def __init__(self, influxd: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="influx-bench-"))
        self.port = free_port()
        rpc_port = free_port()
        config = self.root / "influxdb.conf"
        config.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{self.root}/meta"
[data]
  dir = "{self.root}/data"
  wal-dir = "{self.root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  suppress-write-log = true
[[udp]]
  enabled = false
[[graphite]]
  enabled = false
[continuous_queries]
  enabled = false
""")
        self.log = open(self.root / "influxd.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen([influxd, "run", "-config", str(config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited: {(self.root / 'influxd.log').read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 204:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("influxd not ready")

    def query(self, q: str, db: str | None = None) -> dict:
        params = {"q": q, **({"db": db} if db else {})}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.request("POST", "/query?" + urlencode(params))
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"influx query {q!r}: {response.status} {body[:300]!r}")
        return json.loads(body)

    def reset(self) -> None:
        self.query(f"DROP DATABASE {INFLUX_DB}")
        self.query(f"CREATE DATABASE {INFLUX_DB}")

    def stored(self) -> int:
        """Points stored, summed over every field of ``cpu`` (one count per field, like our rows)."""
        data = self.query("SELECT count(*) FROM cpu", db=INFLUX_DB)
        total = 0
        for result in data.get("results", []):
            for series in result.get("series", []):
                for row in series.get("values", []):
                    total += sum(v for v in row[1:] if isinstance(v, int))
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Result:
    side: str
    elapsed: float
    values_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int
    stored: int
    server_cpu: float


def post(url: str, token: str | None, path: str, workload: _tsbs.Workload, clients: int) -> tuple[Poster, float]:
    poster = Poster(url, token, workload.bodies, clients, gzip=False, path=path)
    return poster, poster.run()


def result_of(side: str, poster: Poster, elapsed: float, workload: _tsbs.Workload, stored: int, cpu: float) -> Result:
    failed = sum(poster.statuses.values()) - poster.statuses.get(204, 0)
    for failure in poster.failures[:3]:
        print(f"  {side} refused: {failure}", flush=True)
    return Result(side, elapsed, workload.values / elapsed, 1000 * quantile(poster.latencies, 0.5),
                  1000 * quantile(poster.latencies, 0.99), failed, stored, cpu)


def run_ours(server: BenchServer, workload: _tsbs.Workload, clients: int) -> Result:
    import psycopg

    with psycopg.connect(server.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE metrics_sample, metrics_rollupinvalidation")
    sampler = BackendSampler(server.database_url, server.db_name)
    cpu0 = cpu_seconds(server.pids)
    poster, elapsed = post(server.url, server.write_token, "/api/v1/write?db=bench&precision=ns", workload, clients)
    cpu = cpu_seconds(server.pids) - cpu0 + sampler.stop()[0]
    with psycopg.connect(server.database_url, autocommit=True) as conn:
        stored = conn.execute("SELECT count(*) FROM metrics_sample").fetchone()[0]
    return result_of("FiberStack", poster, elapsed, workload, stored, cpu)


def run_influx(influx: InfluxServer, workload: _tsbs.Workload, clients: int) -> Result:
    influx.reset()
    proc = psutil.Process(influx.proc.pid)
    cpu0 = sum(proc.cpu_times()[:2])
    poster, elapsed = post(influx.url, None, INFLUX_WRITE_PATH, workload, clients)
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    return result_of("InfluxDB", poster, elapsed, workload, influx.stored(), cpu)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workload = _tsbs.generate(hosts=args.hosts, hours=args.hours, interval_s=args.interval, batch_lines=args.batch,
                              end_s=int(time.time()), seed=args.seed)
    print(f"workload: TSBS cpu-only, {workload.lines:,} lines / {workload.values:,} values in "
          f"{len(workload.bodies)} bodies of {args.batch} lines; {args.clients} clients", flush=True)
    version = subprocess.run([args.influxd, "version"], capture_output=True, text=True, check=False).stdout.strip()
    influx = InfluxServer(args.influxd)
    server = BenchServer(os.environ["DATABASE_URL"],
                         base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                         redis_db=args.redis_db, db_name=args.db_name, workers=args.workers,
                         extra_env={"DJANGO_SETTINGS_MODULE": args.settings})
    results: list[tuple[Result, Result]] = []
    try:
        server.prepare()
        server.start()
        print(f"FiberStack: {args.workers} daphne workers ({args.settings}) on {server.url}; "
              f"{version} on {influx.url}", flush=True)
        for round_no in range(1, args.rounds + 1):
            ours = run_ours(server, workload, args.clients)
            print(f"round {round_no}: FiberStack {ours.values_per_s:,.0f} values/s", flush=True)
            theirs = run_influx(influx, workload, args.clients)
            print(f"round {round_no}: InfluxDB {theirs.values_per_s:,.0f} values/s", flush=True)
            results.append((ours, theirs))
    finally:
        server.stop()
        influx.stop()

    print()
    print(f"load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    # Wall-clock rates follow whatever else the machine runs; values per server CPU-second (daphne workers
    # + their PostgreSQL backends, against influxd) is the ratio that survives a busy machine.
    print("| round | FiberStack values/s | InfluxDB values/s | ratio | p50 ms ours / influx "
          "| server CPU-s ours / influx | values per server CPU-s ours / influx | CPU ratio "
          "| stored ours / influx / sent |")
    print("|---|---:|---:|---:|---|---|---|---:|---|")
    bad = False
    for i, (ours, theirs) in enumerate(results, 1):
        ours_cpu = workload.values / ours.server_cpu if ours.server_cpu else float("nan")
        theirs_cpu = workload.values / theirs.server_cpu if theirs.server_cpu else float("nan")
        print(f"| {i} | {ours.values_per_s:,.0f} | {theirs.values_per_s:,.0f} | "
              f"{ours.values_per_s / theirs.values_per_s:.2f}x | {ours.p50_ms:.0f} / {theirs.p50_ms:.0f} | "
              f"{ours.server_cpu:.1f} / {theirs.server_cpu:.1f} | {ours_cpu:,.0f} / {theirs_cpu:,.0f} | "
              f"{ours_cpu / theirs_cpu:.2f}x | {ours.stored:,} / {theirs.stored:,} / {workload.values:,} |")
        for r in (ours, theirs):
            if r.failed or r.stored != workload.values:
                bad = True
                print(f"FAIL: {r.side} round {i}: {r.failed} requests refused, {r.stored:,} of "
                      f"{workload.values:,} stored")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
