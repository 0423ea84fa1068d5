"""Queue routing: slow maintenance (rollups, retention) must not delay alert evaluation or delivery."""

from __future__ import annotations

from typing import Any

MAINTENANCE_PREFIXES = ("metrics.rollup", "metrics.apply_retention", "metrics.ensure_partitions",
                        "metrics.compress_chunks", "audit.apply_retention")


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict | None:
    if name.startswith(MAINTENANCE_PREFIXES):
        return {"queue": "maintenance"}
    return {"queue": "celery"}
