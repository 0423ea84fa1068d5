"""Per-request cost in process: the real ASGI application (``fiberstack.asgi.application``, production settings)
driven without daphne or sockets, on the database ``bench/query.py --keep-db`` left behind.

    .venv/bin/python -m fiberstack.devstack exec .venv/bin/python bench/query.py --days 1 --keep-db --no-sizes
    .venv/bin/python -m fiberstack.devstack exec .venv/bin/python bench/request_cost.py [--requests 2000]

Times ``GET /healthz`` (the floor: handler, middleware, no database) and q1 (q2, q3 with ``--paths``) of
``bench/query.py`` with a read token, sequentially, after 50 warm-ups each, and prints per request the
process CPU time (all threads) and the wall-clock median. CPU time is what a change to the request path
moves; on a machine shared with other work it is far steadier than wall-clock latency, so compare two
checkouts by running this alternately from each, several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _server import ORG_SLUG, database_url_for, redis_url_for  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per path")
    parser.add_argument("--db-name", default="fiberstack_bench_query")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--paths", default="healthz,q1", help="any of healthz, q1, q2, q3 (comma-separated)")
    return parser.parse_args()


def http_scope(path: str, token: str) -> dict[str, Any]:
    path, _, query = path.partition("?")
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


async def request(application: Any, scope: dict[str, Any]) -> int:
    sent: list[dict[str, Any]] = []
    requested = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()  # a client that stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(dict(scope), receive, send)
    return sent[0]["status"]


async def measure(application: Any, label: str, scope: dict[str, Any], runs: int) -> None:
    for _ in range(50):
        status = await request(application, scope)
    if status != 200:
        raise SystemExit(f"{label}: status {status}")
    cpu, wall = [], []
    for _ in range(runs):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        await request(application, scope)
        cpu.append(time.process_time() - cpu_started)
        wall.append(time.perf_counter() - wall_started)
    print(f"{label:8} CPU {sum(cpu) / runs * 1e6:7.0f} us/request   "
          f"wall median {statistics.median(wall) * 1e6:7.0f} us", flush=True)


def main() -> None:
    args = parse_args()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="fiberstack.settings.prod", SECRET_KEY="request-cost-bench-" + "x" * 40,
        DATABASE_URL=database_url_for(os.environ["DATABASE_URL"], args.db_name),
        REDIS_URL=redis_url_for(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), args.redis_db),
        SECURE_SSL_REDIRECT="false", ALLOWED_HOSTS="127.0.0.1", DEBUG="false", LOG_LEVEL="WARNING",
    )
    import django

    django.setup(set_prefix=False)
    from django.db import connection

    from apps.organizations.models import Organization
    from apps.organizations.services import issue_token
    from fiberstack.asgi import application

    _, token = issue_token(organization=Organization.objects.get(slug=ORG_SLUG), name=f"cost-{time.time():.0f}",
                           scope="read", expires_at=None, actor=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM max(time))::bigint FROM metrics_sample")
        hour_end = cursor.fetchone()[0] // 3600 * 3600
    connection.close()  # requests take their connections from the pool, in their own threads
    paths = {"healthz": "/healthz",
             "q1": f"/api/v1/metrics?name=cpu_usage_user&host=host_0&step=60&agg=max&start={hour_end - 3600}"
                   f"&end={hour_end - 1}",
             "q2": f"/api/v1/metrics?name=cpu_usage_user&step=3600&agg=avg&start={hour_end - 12 * 3600}"
                   f"&end={hour_end - 1}",
             "q3": "/api/v1/metrics/latest?labels=" + quote('__name__=~"cpu_.*"')}
    for label in args.paths.split(","):
        asyncio.run(measure(application, label, http_scope(paths[label], token), args.requests))


if __name__ == "__main__":
    main()
