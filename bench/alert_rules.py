"""Alert rule capacity: how long one ``alerts.check_rules`` tick takes to evaluate N simple threshold rules.

    .venv/bin/python -m fiberstack.devstack exec .venv/bin/python bench/alert_rules.py \\
        [--rules 1000,10000] [--hosts 1000] [--concurrency 2] [--chunk 1000] [--mode both] [--latency 50]
        [--keep-db] [--profile]

Uses the PostgreSQL and Redis servers that ``DATABASE_URL`` / ``REDIS_URL`` name (``devstack exec`` sets
them): a scratch database ``fiberstack_bench_alerts`` (dropped and re-created, migrated) and Redis
database ``--redis-db`` (default 13, flushed first). It creates one organization with ``--hosts`` hosts,
one ``cpu`` series per host with a sample every 10 s over the last 10 minutes, and for each N in
``--rules`` N threshold rules: rule i watches ``cpu{host="host-<i mod hosts>"}`` with a reducer among
avg/max/last/min (60 s window) and a critical threshold between 50 and 100 with a warning at 40, so nearly
all fire; ``--breaching 0.05`` gives only that share such thresholds (the rest cannot fire), as in a
healthy fleet.

Two modes (``--mode``):

* ``celery`` -- the real path: this process calls the tick task's function (``check_rules``: claim + fan-out
  of ``alerts.evaluate_rules`` chunks to the broker), a real Celery worker (prefork, ``--concurrency``
  processes, started here with the same settings) evaluates them; the tick's time is from the call until
  every rule's ``last_evaluated_at`` has moved (polled every 100 ms);
* ``inline`` -- the same claim, then each chunk's task body (``engine.run_rules``) in this process, one
  after another: the evaluation cost on one core without the broker.

``--latency TRIALS`` (with the worker) also times the ingest path: a fresh sample, its batch handed to
the ingest consumer, until the worker has evaluated the rule (p50 / p95 / max).

Every rule goes through the real lifecycle (``services.lifecycle.record_chunk``): the numbers cover
selection, window reads, outcomes and the alert writes, groups, events and notifications of a storm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DB_NAME = "fiberstack_bench_alerts"
REDUCERS = ("avg", "max", "last", "min")


def configure(database_url: str, redis_url: str) -> None:
    os.environ.update(DATABASE_URL=database_url, DATABASE_OWNER_URL=database_url, REDIS_URL=redis_url,
                      CELERY_BROKER_URL=redis_url, DEBUG="false", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiberstack.settings.dev")
    import django

    django.setup()


def worker_main(argv: list[str]) -> None:
    """``--worker``: a Celery worker with the bench's settings."""
    configure(os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    from fiberstack.celery import app

    app.worker_main(["worker", *argv])


def load(hosts: int) -> Any:
    """The organization, its hosts and one ``cpu`` series per host with 10 minutes of samples."""
    from django.db import connection

    from apps.hosts.models import Host
    from apps.metrics.models import Series, series_key_hash
    from apps.organizations.models import Organization

    org = Organization.objects.create(name="bench-alerts", slug="bench-alerts")
    now = dt.datetime.now(dt.UTC)
    Host.objects.bulk_create([Host(organization=org, name=f"host-{i}", last_seen_at=now) for i in range(hosts)])
    host_ids = dict(Host.objects.filter(organization=org).values_list("name", "id"))
    Series.objects.bulk_create([
        Series(organization=org, name="cpu", labels={"host": name}, host_id=hid,
               key_hash=series_key_hash("cpu", (("host", name),)))
        for name, hid in host_ids.items()])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metrics_sample (time, series_id, value) "
            "SELECT %s - make_interval(secs => 10 * i), s.id, round((50 + 45 * sin(s.id + i / 7.0))::numeric, 1) "
            "FROM metrics_series AS s, generate_series(0, 59) AS i WHERE s.organization_id = %s",
            [now, org.pk])
        cursor.execute("ANALYZE metrics_sample")
        cursor.execute("ANALYZE metrics_series")
    return org


def make_rules(org: Any, n: int, hosts: int, breaching: float = 1.0) -> None:
    from django.utils import timezone

    from apps.alerts.models import AlertRule

    AlertRule.objects.filter(organization=org, system_key="").delete()
    rng = random.Random(n)
    due = timezone.now() - dt.timedelta(seconds=1)
    # A share ``breaching`` of the rules can fire (warning 40, critical 50..100 on values in 0..100); the
    # others have thresholds above any value, as most rules of a healthy fleet are most of the time.
    can_fire = [rng.random() < breaching for _ in range(n)]
    AlertRule.objects.bulk_create([
        AlertRule(organization=org, name=f"cpu-{i}", metric="cpu", label_matchers=f'host="host-{i % hosts}"',
                  reducer=REDUCERS[i % len(REDUCERS)], window_seconds=60, comparator=">",
                  critical=float(rng.randint(50, 100)) if can_fire[i] else 1000.0,
                  warning=40.0 if can_fire[i] else None, next_evaluation_at=due)
        for i in range(n)], batch_size=2000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE alerts_alertrule")


def reset_due(org: Any) -> None:
    from django.utils import timezone

    from apps.alerts.models import AlertRule

    AlertRule.objects.filter(organization=org).update(next_evaluation_at=timezone.now() - dt.timedelta(seconds=1),
                                                      last_evaluated_at=None)


def evaluated(org: Any, since: dt.datetime) -> tuple[int, int]:
    from apps.alerts.models import AlertRule

    mine = AlertRule.objects.filter(organization=org, system_key="")
    return (mine.filter(last_evaluated_at__gte=since).count(),
            mine.filter(last_error_at__gte=since).count())


def run_celery(org: Any, n: int, timeout: float) -> dict[str, Any]:
    from django.utils import timezone

    from apps.alerts.tasks.evaluation import check_rules

    reset_due(org)
    started_at = timezone.now()
    t0 = time.perf_counter()
    summary = check_rules()
    claimed_s = time.perf_counter() - t0
    done = errors = 0
    while time.perf_counter() - t0 < timeout:
        done, errors = evaluated(org, started_at)
        if done + errors >= n:
            break
        time.sleep(0.1)
    return {"seconds": time.perf_counter() - t0, "claim_s": claimed_s, "done": done, "errors": errors,
            "summary": summary}


def run_inline(org: Any, n: int) -> dict[str, Any]:
    from django.utils import timezone

    from apps.alerts.evaluation import engine, tick

    reset_due(org)
    started_at = timezone.now()
    t0 = time.perf_counter()
    claimed = tick.claim_due(timezone.now())
    claimed_s = time.perf_counter() - t0
    for chunk in tick.chunks(claimed):
        engine.run_rules(chunk)
    seconds = time.perf_counter() - t0
    done, errors = evaluated(org, started_at)
    return {"seconds": seconds, "claim_s": claimed_s, "done": done, "errors": errors, "summary": ""}


def run_latency(org: Any, trials: int, hosts: int) -> list[float]:
    """Ingest path: for each trial, a fresh sample of one host is written and its batch handed to the
    ingest consumer (as ``hooks.dispatch`` does after the ingest commit); the time until the worker has
    evaluated the host's rule (``last_evaluated_at`` moved; polled every 5 ms). One rule per host and a
    different host per trial, so per-rule coalescing never delays a trial."""
    from django.db import connection
    from django.utils import timezone

    from apps.alerts.evaluation import consumer
    from apps.alerts.models import AlertRule
    from apps.metrics import storage
    from apps.metrics.hooks import IngestBatch
    from apps.metrics.models import Series

    AlertRule.objects.filter(organization=org, system_key="").delete()
    far = timezone.now() + dt.timedelta(days=1)  # the tick must not evaluate them meanwhile
    rules = AlertRule.objects.bulk_create([
        AlertRule(organization=org, name=f"lat-{i}", metric="cpu", label_matchers=f'host="host-{i}"', reducer="last",
                  window_seconds=60, critical=90.0, next_evaluation_at=far) for i in range(min(trials, hosts))])
    series = dict(Series.objects.filter(organization=org, name="cpu").values_list("labels__host", "id"))
    latencies = []
    for i, rule in enumerate(rules):
        sid = series[f"host-{i}"]
        now = timezone.now()
        t_us = int(now.timestamp() * 1_000_000)
        with connection.cursor() as cursor:
            storage.copy_samples(cursor, [t_us], [sid], [99.0])
        batch = IngestBatch.build(organization_id=org.pk, received_at=now, latest={sid: (t_us, 99.0)},
                                  host_of_series={sid: None}, hosts_seen=frozenset())
        t0 = time.perf_counter()
        consumer.consume(batch)
        while not AlertRule.objects.filter(pk=rule.pk, last_evaluated_at__gte=now).exists():
            if time.perf_counter() - t0 > 30:
                raise SystemExit(f"rule {rule.pk} was not evaluated within 30 s")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.2)
    return latencies


def start_worker(concurrency: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(Path(tempfile.gettempdir()) / "bench-alert-worker.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--pool", "prefork", "--concurrency",
         str(concurrency), "-Q", "celery", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", os.environ.get("BENCH_WORKER_LOG", "WARNING")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_worker(org: Any, timeout: float = 60) -> None:
    """A ping task through the broker: the first tick must not pay for the worker's start-up."""
    from apps.alerts.tasks.evaluation import evaluate_rules

    deadline = time.monotonic() + timeout
    result = evaluate_rules.apply_async(args=[[]])
    del result
    from fiberstack.celery import app

    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5)
        if replies:
            return
    raise SystemExit("the Celery worker did not start (see bench-alert-worker.log in the temporary directory)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="1000,10000")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--breaching", type=float, default=1.0,
                        help="share of rules whose thresholds the data can cross (default 1: nearly all fire)")
    parser.add_argument("--mode", choices=("celery", "inline", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3, help="ticks per N and mode (the table shows each)")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--latency", type=int, default=0, metavar="TRIALS",
                        help="also time TRIALS ingest-triggered evaluations through the worker (celery mode)")
    parser.add_argument("--profile", action="store_true", help="cProfile one inline tick per N (top functions)")
    args = parser.parse_args()

    from _server import database_url_for, drop_database, flush_redis, recreate_database, redis_url_for

    base_db, base_redis = os.environ["DATABASE_URL"], os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    database_url, redis_url = database_url_for(base_db, DB_NAME), redis_url_for(base_redis, args.redis_db)
    recreate_database(base_db, DB_NAME)
    flush_redis(redis_url)
    env = dict(os.environ, DATABASE_URL=database_url, DATABASE_OWNER_URL=database_url, REDIS_URL=redis_url,
               CELERY_BROKER_URL=redis_url, DEBUG="false")
    env.setdefault("DJANGO_SETTINGS_MODULE", "fiberstack.settings.dev")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v", "0"], cwd=ROOT,
                   env=env, check=True)
    os.environ["FIBERSTACK_ALERTS_EVALUATION_CHUNK"] = str(args.chunk)
    configure(database_url, redis_url)
    from django.conf import settings

    settings.FIBERSTACK_ALERTS_EVALUATION_CHUNK = args.chunk
    settings.FIBERSTACK_ALERTS_TICK_LIMIT = max(int(x) for x in args.rules.split(",")) + 100
    org = load(args.hosts)
    worker = None
    rows: list[tuple[Any, ...]] = []
    try:
        if args.mode in ("celery", "both"):
            env_worker = dict(os.environ)
            os.environ.update(env_worker)
            worker = start_worker(args.concurrency)
            wait_for_worker(org)
        for n in (int(x) for x in args.rules.split(",")):
            make_rules(org, n, args.hosts, args.breaching)
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.runcall(run_inline, org, n)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            for mode in ("inline", "celery") if args.mode == "both" else (args.mode,):
                for _ in range(args.repeat):
                    result = run_celery(org, n, timeout=120) if mode == "celery" else run_inline(org, n)
                    rows.append((n, mode, result["seconds"], n / result["seconds"], result["claim_s"] * 1000,
                                 result["done"], result["errors"]))
                    print(f"  {n} rules, {mode}: {result['seconds']:.2f} s {result['summary']}", flush=True)
        if args.latency and worker is not None:
            lat = sorted(run_latency(org, args.latency, args.hosts))
            p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.95))]
            print(f"\ningest -> evaluated ({len(lat)} trials): p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                  f"max {lat[-1] * 1000:.0f} ms")
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(base_db, DB_NAME)
            flush_redis(redis_url)
    workers = f"{args.concurrency} worker processes" if args.mode != "inline" else "no worker"
    print(f"\nlifecycle: real; chunk {args.chunk}; {args.hosts} hosts; "
          f"{workers}; {os.cpu_count()} CPUs")
    print(f"{'rules':>7}  {'mode':<7} {'tick s':>7} {'rules/s':>9} {'claim ms':>9} {'evaluated':>9} {'errored':>7}")
    for n, mode, seconds, rate, claim_ms, done, errors in rows:
        print(f"{n:>7}  {mode:<7} {seconds:>7.2f} {rate:>9.0f} {claim_ms:>9.1f} {done:>9} {errors:>7}")


if __name__ == "__main__":
    main()
