"""Ingest benchmark: the TSBS "devops cpu-only" workload posted as InfluxDB line protocol.

    .venv/bin/python bench/ingest.py [--hosts 100] [--hours 24] [--batch 5000] [--clients 2] [--workers 2]
                                     [--url URL --token TOKEN [--read-token TOKEN]] [--profile DIR]

Without ``--url`` it starts its own server with production settings on a fresh database
``fiberstack_bench`` on the PostgreSQL server of ``DATABASE_URL`` and Redis database ``--redis-db``
(default 15, flushed first) on the server of ``REDIS_URL``, with
``--workers`` daphne processes sharing one socket, and removes it all at the end (``--keep-db`` keeps
the database). The workload (100 hosts x 10 s x 24 h = 864,000 lines, 8.64 M values by default) is
generated before timing; ``--clients`` threads then post it in ``--batch``-line requests over
keep-alive connections. The table reports values/s and lines/s over the posting phase, request
latency p50/p99, errors, CPU seconds per process group, and checks that the stored sample count
equals the sent value count (SQL count on the fresh database; with ``--url``, through the read API
when ``--read-token`` is given). ``--profile DIR`` samples every daphne worker with py-spy during the
timed phase and prints the hottest functions. Exit status 1 if anything was lost or refused.
See bench/README.md for measured figures.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _tsbs
from _server import BenchServer

WRITE_PATH = "/api/v1/write?db=bench&precision=ns"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--interval", type=int, default=10, help="seconds between points of a host (TSBS: 10)")
    parser.add_argument("--batch", type=int, default=5000, help="lines per request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client connections")
    parser.add_argument("--workers", type=int, default=2, help="daphne worker processes (own server only)")
    parser.add_argument("--url", help="an existing server instead of starting one")
    parser.add_argument("--token", help="write token for --url")
    parser.add_argument("--read-token", help="read token for --url, to verify the stored count")
    parser.add_argument("--db-name", default="fiberstack_bench", help="database the own server creates")
    parser.add_argument("--redis-db", type=int, default=15,
                        help="Redis database the own server uses and flushes first (default 15)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    parser.add_argument("--gzip", action="store_true", help="gzip the bodies (Content-Encoding: gzip)")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--settings", default="fiberstack.settings.prod",
                        help="DJANGO_SETTINGS_MODULE of the own server (e.g. a module on PYTHONPATH that imports "
                             "prod and changes one setting, to measure it before committing it)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy every worker during the timed phase into DIR")
    args = parser.parse_args(argv)
    if args.url and not args.token:
        parser.error("--url needs --token")
    if not args.url and not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL (the bench creates its database on that server) or give --url")
    return args


class Poster:
    """``clients`` threads, each with one keep-alive connection, taking the next body from a shared counter."""

    def __init__(self, url: str, token: str | None, bodies: list[bytes], clients: int, gzip: bool,
                 path: str = WRITE_PATH) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.path = path
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if gzip:
            import gzip as gzip_module

            bodies = [gzip_module.compress(body, compresslevel=1) for body in bodies]
            self.headers["Content-Encoding"] = "gzip"
        self.bodies = bodies
        self.clients = clients
        self.latencies: list[float] = []
        self.statuses: Counter[int | str] = Counter()
        self.failures: list[str] = []
        self._next = itertools.count()
        self._lock = threading.Lock()

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        latencies, statuses = [], Counter()
        while True:
            index = next(self._next)
            if index >= len(self.bodies):
                break
            started = time.perf_counter()
            try:
                conn.request("POST", self.prefix + self.path, self.bodies[index], self.headers)
                response = conn.getresponse()
                reply = response.read()
                status: int | str = response.status
            except (OSError, http.client.HTTPException) as exc:
                status, reply = type(exc).__name__, str(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if status != 204:
                with self._lock:
                    self.failures.append(f"batch {index}: {status} {reply[:300]!r}")
        conn.close()
        with self._lock:
            self.latencies.extend(latencies)
            self.statuses.update(statuses)

    def run(self) -> float:
        threads = [threading.Thread(target=self._client, name=f"client-{i}") for i in range(self.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


class Profiler:
    """py-spy ``record --format raw`` on each worker; aggregates self and inclusive samples per function."""

    def __init__(self, out_dir: Path, pids: list[int]) -> None:
        self.out_dir = out_dir
        self.out_dir.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")
        self.files = [out_dir / f"worker-{pid}.folded" for pid in pids]
        self.procs = [
            subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking",
                              "--output", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid, path in zip(pids, self.files, strict=True)
        ]
        time.sleep(1.0)  # py-spy attaches asynchronously

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def report(self, top: int = 25) -> str:
        self_counts: Counter[str] = Counter()
        total_counts: Counter[str] = Counter()
        samples = 0
        for path in self.files:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = [_function(frame) for frame in stack.split(";")]
                samples += count
                self_counts[frames[-1]] += count
                for name in set(frames):
                    total_counts[name] += count
        if not samples:
            return "py-spy recorded no samples"
        out = [f"py-spy: {samples} samples over {len(self.files)} workers (200 Hz, busy time only); "
               f"folded stacks in {self.out_dir}", "", "self %   incl %   function"]
        for name, count in self_counts.most_common(top):
            out.append(f"{100 * count / samples:6.1f}   {100 * total_counts[name] / samples:6.1f}   {name}")
        out += ["", "top inclusive (project code only):", "incl %   function"]
        ours = [(n, c) for n, c in total_counts.most_common() if "apps/" in n or "fiberstack/" in n]
        for name, count in ours[:top]:
            out.append(f"{100 * count / samples:6.1f}   {name}")
        return "\n".join(out)


def _function(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file path shortened, no line)`` so lines of one function merge."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    root = str(Path(__file__).resolve().parents[1]) + "/"
    if path.startswith(root):
        path = path[len(root):]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + getattr(times, "children_user", 0) + getattr(times, "children_system", 0)
    return total


class BackendSampler:
    """Polls the PostgreSQL backends serving ``db_name`` (their process titles name the database) and
    keeps each one's latest CPU time, so backends that live for one request are counted too. Only the
    postmaster's children are scanned, which keeps the bench's own CPU use small."""

    def __init__(self, database_url: str, db_name: str, period: float = 0.2) -> None:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            # Asked while the connection is open: a closed connection's backend may already be gone.
            self.postmaster = psutil.Process(backend).parent()  # same machine only; else nothing is sampled
        self.marker = f" {db_name} "
        self.period = period
        self.baseline: dict[int, float] = {}
        self.latest: dict[int, float] = {}
        self._stop = threading.Event()
        self._poll(self.baseline)
        self._thread = threading.Thread(target=self._run, name="pg-sampler", daemon=True)
        self._thread.start()

    def _poll(self, into: dict[int, float]) -> None:
        if self.postmaster is None:
            return
        for proc in self.postmaster.children():
            try:
                with proc.oneshot():
                    cmdline = proc.cmdline()
                    if cmdline and self.marker in f" {cmdline[0]} ":
                        times = proc.cpu_times()
                        into[proc.pid] = times.user + times.system
            except psutil.Error:  # the backend exited meanwhile
                continue

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._poll(self.latest)

    def stop(self) -> tuple[float, int]:
        """(CPU seconds used by bench backends while sampling, number of distinct backends seen)."""
        self._stop.set()
        self._thread.join()
        self._poll(self.latest)
        used = sum(cpu - self.baseline.get(pid, 0.0) for pid, cpu in self.latest.items())
        return used, len(set(self.latest) - set(self.baseline))


def count_stored_sql(database_url: str) -> tuple[int, int, int]:
    """On the fresh database: (rows in the raw samples table, of those the rows whose series belongs to
    the bench organization, series of the bench organization). The two counts differ only if samples
    point at series that do not exist -- which a stale series-id cache would cause."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        raw = conn.execute("SELECT count(*) FROM metrics_sample").fetchone()[0]
        org = "(SELECT id FROM organizations_organization WHERE slug = 'bench')"
        joined = conn.execute("SELECT count(*) FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
                              f"WHERE r.organization_id = {org}").fetchone()[0]
        series = conn.execute(f"SELECT count(*) FROM metrics_series WHERE organization_id = {org}").fetchone()[0]
    return raw, joined, series


def count_stored_api(url: str, token: str, workload: _tsbs.Workload) -> int:
    """Sum of ``agg=count`` over the whole window for each cpu_* metric, through GET /api/v1/metrics."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=300)
    start_s = workload.start_ns // 1_000_000_000
    end_s = workload.end_ns // 1_000_000_000 + 1
    total = 0
    for field in _tsbs.CPU_FIELDS:
        query = urlencode({"name": f"cpu_{field}", "start": start_s, "end": end_s, "step": end_s - start_s + 1,
                           "agg": "count"})
        conn.request("GET", f"{parts.path.rstrip('/')}/api/v1/metrics?{query}",
                     headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"read API answered {response.status}: {body[:300]!r}")
        data = json.loads(body)
        series_list = data.get("series", data.get("results", data)) if isinstance(data, dict) else data
        for series in series_list:
            total += int(sum(point[1] for point in series.get("values", series.get("points", []))))
    return total


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    workload = _tsbs.generate(hosts=args.hosts, hours=args.hours, interval_s=args.interval, batch_lines=args.batch,
                              end_s=int(time.time()), seed=args.seed)
    generated_in = time.perf_counter() - t0
    size_mb = sum(map(len, workload.bodies)) / 1e6
    print(f"generated {workload.lines:,} lines / {workload.values:,} values in {len(workload.bodies)} bodies "
          f"({size_mb:.0f} MB) in {generated_in:.1f} s", flush=True)

    server: BenchServer | None = None
    if args.url:
        url, token = args.url, args.token
    else:
        server = BenchServer(os.environ["DATABASE_URL"],
                             base_redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                             redis_db=args.redis_db, db_name=args.db_name, workers=args.workers,
                             keep_db=args.keep_db, extra_env={"DJANGO_SETTINGS_MODULE": args.settings})
        print(f"preparing database {args.db_name} (migrate, org, tokens) …", flush=True)
        server.prepare()
        server.start()
        url, token = server.url, server.write_token
        print(f"server: {args.workers} daphne workers, settings {args.settings}, on {url}", flush=True)
    try:
        return run(args, workload, url, token, server)
    finally:
        if server is not None:
            server.stop()


def run(args: argparse.Namespace, workload: _tsbs.Workload, url: str, token: str, server: BenchServer | None) -> int:
    poster = Poster(url, token, workload.bodies, args.clients, args.gzip)
    worker_pids = server.pids if server else []
    profiler = Profiler(Path(args.profile), worker_pids) if args.profile and worker_pids else None
    me = psutil.Process()
    cpu_me0 = sum(me.cpu_times()[:2])
    cpu_workers0 = cpu_seconds(worker_pids)
    sampler = BackendSampler(server.database_url, server.db_name) if server else None

    elapsed = poster.run()

    cpu_me = sum(me.cpu_times()[:2]) - cpu_me0
    cpu_workers = cpu_seconds(worker_pids) - cpu_workers0
    cpu_pg, backends = sampler.stop() if sampler else (None, 0)
    if profiler:
        profiler.stop()

    requests = sum(poster.statuses.values())
    ok = poster.statuses.get(204, 0)
    errors = requests - ok
    sent_values = workload.values
    accepted_values = sent_values if errors == 0 else None
    stored: int | None = None
    series: int | None = None
    raw_rows: int | None = None
    verify_note = ""
    try:
        if server:
            raw_rows, stored, series = count_stored_sql(server.database_url)
        elif args.read_token:
            stored = count_stored_api(url, args.read_token, workload)
        else:
            verify_note = "not verified (give --read-token)"
    except Exception as exc:  # the report must still print
        verify_note = f"count failed: {exc}"

    rows = [
        ("workload", f"TSBS devops cpu-only: {workload.hosts} hosts, {args.interval} s, {args.hours:g} h ending now"),
        ("lines / values sent", f"{workload.lines:,} / {sent_values:,} in {requests} requests of {args.batch} lines"),
        ("server", f"{args.workers} daphne workers ({args.settings})" if server else url),
        ("clients", f"{args.clients} keep-alive connections{', gzip' if args.gzip else ''}"),
        ("elapsed (posting)", f"{elapsed:.2f} s"),
        ("values/s sustained", f"{sent_values / elapsed:,.0f}"),
        ("lines/s", f"{workload.lines / elapsed:,.0f}"),
        ("request p50 / p99", f"{1000 * quantile(poster.latencies, 0.50):.0f} ms / "
                              f"{1000 * quantile(poster.latencies, 0.99):.0f} ms"),
        ("responses", ", ".join(f"{k}: {v}" for k, v in sorted(poster.statuses.items(), key=str))),
        ("errors", str(errors)),
        ("stored / sent", verify_note if stored is None else f"{stored:,} / {sent_values:,}"
         + (f" ({raw_rows:,} raw rows)" if raw_rows not in (None, stored) else "")),
        ("series", f"{series:,} (expected {workload.series:,})" if series is not None else "-"),
        ("postgres backends used", str(backends) if sampler else "-"),
        ("CPU s: workers/postgres/bench", f"{cpu_workers:.1f} / {'-' if cpu_pg is None else f'{cpu_pg:.1f}'} / "
                                          f"{cpu_me:.1f} (of {(os.cpu_count() or 1) * elapsed:.1f} available)"),
    ]
    if cpu_pg is not None and cpu_workers + cpu_pg > 0:
        # Throughput per CPU-second of the server side: comparable between runs on a busy machine.
        rows.append(("values per server CPU-s", f"{sent_values / (cpu_workers + cpu_pg):,.0f}"))
    width = max(len(name) for name, _ in rows)
    print()
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 60}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    for failure in poster.failures[:5]:
        print("  refused:", failure)
    if profiler:
        print()
        print(profiler.report())
    lost = stored is not None and stored != sent_values
    wrong_series = series is not None and series != workload.series
    if accepted_values is None or lost or wrong_series:
        problem = ("requests were refused" if errors else f"{sent_values - (stored or 0):,} values lost" if lost
                   else f"{series} series stored, {workload.series} expected")
        print("\nFAIL: " + problem)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
