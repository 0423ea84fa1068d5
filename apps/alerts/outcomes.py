"""What one evaluation of a rule found for one label set: the contract between the evaluator (which reads
metrics and decides) and the lifecycle (which moves alerts, writes the timeline and notifies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """One label set's result. ``severity`` None means the value is within normal range (clear);
    ``labels`` are the series (or host) labels only -- the lifecycle adds the rule's labels, ``alertname``
    and ``severity``. ``baseline`` carries an anomaly rule's baseline so a person can see why. ``summary`` and
    ``description``, when set, are texts the source wrote itself (an integration's annotations): they are used
    instead of the rule's templates."""

    labels: dict[str, str]
    value: float | None
    severity: str | None
    threshold: float | None = None
    host_id: int | None = None
    series_id: int | None = None
    baseline: dict[str, Any] | None = field(default=None)
    summary: str | None = None
    description: str | None = None
