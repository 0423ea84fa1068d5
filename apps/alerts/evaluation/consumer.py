"""Metrics ingest consumer (``FIBERSTACK_INGEST_CONSUMERS``). Placeholder until evaluation lands."""

from __future__ import annotations

from typing import Any


def consume(batch: Any) -> None:
    return None
