"""Helpers of the evaluation tests: series with samples at chosen offsets before an instant, and a
recorder standing in for ``services.lifecycle.record_outcomes``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.metrics.models import Series
from tests.hosts.factories import HostFactory
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import write


def series_with(org: Any, name: str, labels: dict[str, str], at: dt.datetime,
                samples: list[tuple[float, float]], host: Any = None) -> Series:
    """A series of ``org`` with ``samples`` as (seconds before ``at``, value); ``labels["host"]`` names
    (and creates) its host unless ``host`` is given."""
    if host is None and "host" in labels:
        host = HostFactory(organization=org, name=labels["host"]) if not org.hosts.filter(
            name=labels["host"]).exists() else org.hosts.get(name=labels["host"])
    series = SeriesFactory(organization=org, name=name, labels=labels, host=host)
    if samples:
        write(series.id, [(at - dt.timedelta(seconds=ago), value) for ago, value in samples])
    return series


class Recorder:
    """Records every ``record_outcomes`` call; ``fail_for`` rule ids raise like a broken lifecycle."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_for: set[int] = set()

    def __call__(self, *, rule: Any, outcomes: Any, at: dt.datetime, complete: bool) -> list:
        if rule.pk in self.fail_for:
            raise RuntimeError("lifecycle down")
        self.calls.append({"rule": rule.pk, "outcomes": list(outcomes), "at": at, "complete": complete})
        return []

    def chunk(self, items: Any, *, at: dt.datetime) -> dict[int, Any]:
        """Stands in for ``record_chunk``: each rule's evaluation recorded as a ``record_outcomes`` call."""
        results: dict[int, Any] = {}
        for item in items:
            try:
                results[item.rule.pk] = self(rule=item.rule, outcomes=item.outcomes, at=at, complete=item.complete)
            except Exception as exc:
                results[item.rule.pk] = exc
        return results

    def for_rule(self, rule: Any) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["rule"] == rule.pk]
