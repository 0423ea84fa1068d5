"""Parsing the read API's parameters: times, step, aggregation, tier, percentiles. Every problem is a
``QueryError`` naming the parameter, which the views answer as 400."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from apps.metrics.ingest.native_json import parse_timestamp
from apps.metrics.rollups.tiers import TIER_NAMES

DEFAULT_RANGE = dt.timedelta(hours=1)
PERCENTILES: dict[str, float] = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
AGGS: tuple[str, ...] = ("avg", "min", "max", "sum", "count", "last", *PERCENTILES)


class QueryError(ValueError):
    """A bad query parameter; the view answers 400 naming ``parameter`` (plus ``extra`` fields that tell
    the client what would be accepted)."""

    extra: dict[str, Any] = {}

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


#: Epoch seconds of 9999-12-31T23:59:59Z + 1 s, the end of the range ``parse_time`` accepts: no step can be
#: longer than that range (and PostgreSQL's interval cannot hold much longer ones).
MAX_EPOCH_SECONDS = 253402300800


def parse_time(value: str | None, parameter: str, default: dt.datetime) -> dt.datetime:
    """Epoch seconds (``1700000000``, ``1700000000.5``) or RFC 3339 (``2026-11-21T10:00:00Z``)."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            t_us = parse_timestamp(value)
        except ValueError as exc:
            raise QueryError(parameter, f"{parameter} must be epoch seconds or RFC 3339: {exc}") from None
        return dt.datetime.fromtimestamp(t_us / 1_000_000, tz=dt.UTC)
    if not math.isfinite(seconds) or not 0 <= seconds < MAX_EPOCH_SECONDS:
        raise QueryError(parameter, f"{parameter} must be epoch seconds between 1970 and 9999, not {value!r}")
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def parse_step(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        step = float(value.rstrip("s"))
    except ValueError:
        raise QueryError("step", f"step must be a number of seconds, not {value!r}") from None
    if not math.isfinite(step) or step < 1 or step != int(step):
        raise QueryError("step", "step must be a whole number of seconds, at least 1")
    if step > MAX_EPOCH_SECONDS:
        raise QueryError("step", f"step must be at most {MAX_EPOCH_SECONDS} s (1970 to 9999), not {value[:40]!r}")
    return int(step)


def parse_agg(value: str | None) -> str:
    agg = (value or "avg").lower()
    if agg not in AGGS:
        raise QueryError("agg", f"agg must be one of {', '.join(AGGS)}, not {value!r}")
    return agg


def parse_tier(value: str | None) -> str | None:
    if not value:
        return None
    if value not in TIER_NAMES:
        raise QueryError("tier", f"tier must be one of {', '.join(TIER_NAMES)}, not {value!r}")
    return value


def parse_percentiles(value: str | None, agg: str) -> list[str]:
    """``percentiles=p50,p99`` for the summary; a percentile ``agg`` is always included."""
    wanted = [p.strip().lower() for p in (value or "").split(",") if p.strip()]
    for p in wanted:
        if p not in PERCENTILES:
            raise QueryError("percentiles", f"percentiles must be among {', '.join(PERCENTILES)}, not {p!r}")
    if agg in PERCENTILES and agg not in wanted:
        wanted.append(agg)
    return sorted(set(wanted), key=list(PERCENTILES).index)
