"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; touches no dependency."""
    return JsonResponse({"status": "ok"})


def _check(probe: Callable[[], object]) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # a readiness probe reports every failure, whatever its type
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    get_redis_connection("default").ping()


# Which dependencies the process cannot serve without. Redis is not one (DESIGN "Redis"): ingest stores
# samples, pages and the read API answer from PostgreSQL; only rate limits, the hot tier and live updates
# pause. So Redis down is "degraded" (200, still in the load balancer), PostgreSQL down is 503.
PROBES: dict[str, tuple[Callable[[], object], bool]] = {"database": (_database, True), "redis": (_redis, False)}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 ``ok`` when every dependency answers, 200 ``degraded`` when only optional ones (Redis) fail,
    503 ``unavailable`` when a required one (PostgreSQL) fails; ``details`` carries job lag and the like."""
    checks = {name: {**_check(probe), "required": required} for name, (probe, required) in PROBES.items()}
    details: dict = {}
    # The details read the database: with it down each provider would wait out the connection pool's
    # timeout again (10 s each under `make run`), and a probe that answers after its caller gave up is
    # no answer. So they are skipped, and the 503 comes after one wait, not one per provider.
    providers = settings.FIBERSTACK_READINESS_PROVIDERS if checks["database"]["ok"] else ()
    if not checks["database"]["ok"]:
        details["skipped"] = "the database is unavailable"
    for dotted in providers:
        try:
            details.update(import_string(dotted)())
        except Exception as exc:  # details are informative; they never fail the probe
            details[dotted] = f"unavailable: {exc}"
    if all(check["ok"] for check in checks.values()):
        state = "ok"
    elif all(check["ok"] for check in checks.values() if check["required"]):
        state = "degraded"
    else:
        state = "unavailable"
    return JsonResponse({"status": state, "checks": checks, "details": details},
                        status=503 if state == "unavailable" else 200)
