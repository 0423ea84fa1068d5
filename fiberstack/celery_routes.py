"""Queue routing: slow maintenance (rollups, retention) must not delay alert evaluation or delivery."""

from __future__ import annotations

from typing import Any

DEFAULT_QUEUE = "celery"
MAINTENANCE_QUEUE = "maintenance"
# Every queue route_task can return: a worker started without one of them would leave its tasks
# queued forever (the devstack worker and docker's entrypoint consume all of them by default).
QUEUES = (DEFAULT_QUEUE, MAINTENANCE_QUEUE)

MAINTENANCE_PREFIXES = ("metrics.rollup", "metrics.apply_retention", "metrics.ensure_partitions",
                        "metrics.compress_chunks", "audit.apply_retention", "logs.maintain_storage",
                        "logs.expire_es_indices")


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict | None:
    if name.startswith(MAINTENANCE_PREFIXES):
        return {"queue": MAINTENANCE_QUEUE}
    return {"queue": DEFAULT_QUEUE}
