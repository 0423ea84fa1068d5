"""The contract between the wire-format parsers and the ingest service.

Every parser turns one request body into one :class:`ParseResult`: three parallel columns
(series key, time in epoch microseconds, value as float) that the series resolver and the COPY into raw
samples consume without further conversion. Rejections never raise: each one becomes a
:class:`ParseError` naming where it happened, and the good samples around it are kept (partial
writes, as InfluxDB does). Only a body that cannot be read at all (bad snappy, not JSON, wrong
top-level type) raises :class:`PayloadError`, which the view turns into a 400.

Locations name the place a client can find again:

* ``line N`` -- 1-based line number in a line-protocol body (as editors and InfluxDB count);
* ``item N`` / ``item N value M`` -- 0-based index into a JSON array, so ``body[N]`` is the culprit;
* ``timeseries N`` / ``metadata N`` -- 0-based index into the remote_write repeated field;
* ``field 'x'`` -- a named field of a JSON object (prefixed with ``item N,`` inside an array).

The time window, NaN policy, sample limit and error cap are applied the same way by every parser:
:class:`SampleSink` does it for the JSON and protobuf parsers; the line-protocol parser inlines the same
rules in its hot loop for speed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

#: (metric name, label pairs sorted by label name). Parsers reuse the same tuple objects for the same
#: series inside a process, so equality checks usually succeed on identity and dict lookups stay cheap.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]

NanPolicy = Literal["reject", "drop"]
Precision = Literal["ns", "us", "ms", "s"]

#: Reason given when a body has more samples than ``ParseOptions.max_samples``.
TOO_MANY_SAMPLES = "too many samples in one request: the limit is {limit}; samples before this one were kept"


@dataclass(slots=True)
class ParseError:
    """One rejected line, item or field: where it is and why, in words a client author can act on."""

    location: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(slots=True)
class MetricMetadata:
    """Type/help/unit of a metric family, as Prometheus sends it in metadata-only remote_write requests."""

    name: str
    type: str
    help: str
    unit: str


@dataclass(frozen=True, slots=True)
class SeriesLimits:
    """Per-series size limits (see ``validation``). Defaults follow Mimir's spirit; the ingest views build
    them from the FIBERSTACK_INGEST_* settings, capped by the database columns the values reach."""

    #: Labels per series, not counting the metric name.
    max_labels: int = 64
    #: Bytes of a metric or label name (names are ASCII once mapped, so bytes are characters).
    max_name_bytes: int = 200
    #: UTF-8 bytes of one label value.
    max_label_value_bytes: int = 2048
    #: Characters of a host name (``Host.name``).
    max_host_chars: int = 200
    #: Characters of a unit (``Series.unit``).
    max_unit_chars: int = 64
    #: Labels naming a series' host, first present wins (``FIBERSTACK_HOST_LABELS``).
    host_labels: tuple[str, ...] = ("host", "hostname", "node_id", "instance")


DEFAULT_LIMITS = SeriesLimits()


@dataclass(slots=True)
class ParseOptions:
    """Per-request limits. ``now_us`` is passed in (not read from the clock) so parsing is reproducible."""

    now_us: int
    max_past_s: int = 7 * 86400
    max_future_s: int = 600
    max_samples: int = 1_000_000
    nan_policy: NanPolicy = "drop"
    precision: Precision = "ns"
    #: Errors listed beyond this many are only counted (skipped['unlisted_errors']) so that a body of
    #: garbage cannot produce a multi-megabyte 400 response.
    max_errors: int = 1000
    limits: SeriesLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if self.nan_policy not in ("reject", "drop"):
            raise ValueError(f"nan_policy must be 'reject' or 'drop', not {self.nan_policy!r}")
        if self.precision not in ("ns", "us", "ms", "s"):
            raise ValueError(f"precision must be one of ns, us, ms, s, not {self.precision!r}")

    @property
    def min_time_us(self) -> int:
        return self.now_us - self.max_past_s * 1_000_000

    @property
    def max_time_us(self) -> int:
        return self.now_us + self.max_future_s * 1_000_000

    def time_problem(self, t_us: int) -> str | None:
        """Why ``t_us`` falls outside the accepted window, or None when it is inside."""
        if t_us > self.now_us + self.max_future_s * 1_000_000:
            return f"timestamp {format_time_us(t_us)} is more than {self.max_future_s} s in the future"
        if t_us < self.now_us - self.max_past_s * 1_000_000:
            return f"timestamp {format_time_us(t_us)} is more than {self.max_past_s} s in the past"
        return None


@dataclass(slots=True)
class ParseResult:
    """Columns of accepted samples plus everything that was rejected or skipped, and why."""

    keys: list[SeriesKey] = field(default_factory=list)
    times_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    units: dict[SeriesKey, str] = field(default_factory=dict)
    errors: list[ParseError] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    metadata: list[MetricMetadata] = field(default_factory=list)
    #: Inventory learnt from the payload (probe payloads): host name -> attributes such as country and
    #: region, so the ingest service can register or update the Host in the same request.
    hosts: dict[str, dict[str, object]] = field(default_factory=dict)
    #: The keys column a line at a time, from parsers whose lines share one key tuple per field set (line
    #: protocol: the ten fields of a TSBS line are one cached tuple): when not None, the concatenation of
    #: ``runs`` is exactly ``keys``. The ingest service then maps series ids per distinct run -- a request's
    #: 5,000 lines have ~100 -- instead of per sample (50,000). None from parsers that do not keep it.
    runs: list[tuple[SeriesKey, ...]] | None = None

    def __len__(self) -> int:
        return len(self.values)


class PayloadError(Exception):
    """The whole body is unreadable; the caller answers 400 with :meth:`as_dict`."""

    def __init__(self, reason: str, location: str = "body") -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "reason": self.reason}


def format_time_us(t_us: int) -> str:
    """Render epoch microseconds as RFC 3339 for error messages, falling back to the raw number."""
    try:
        return datetime.fromtimestamp(t_us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{t_us} us since the epoch"


class SampleSink:
    """Appends samples to a ParseResult while applying the rules every format shares.

    The rules are the time window, the NaN policy, ``max_samples`` and ``max_errors``. Keeping them in
    one place means a JSON client and a remote_write client get the same answer for the same problem.
    """

    __slots__ = ("_append_key", "_append_time", "_append_value", "full", "hi", "lo", "options", "result")

    def __init__(self, result: ParseResult, options: ParseOptions) -> None:
        self.result = result
        self.options = options
        self.lo = options.min_time_us
        self.hi = options.max_time_us
        self.full = False
        self._append_key = result.keys.append
        self._append_time = result.times_us.append
        self._append_value = result.values.append

    def error(self, location: str, reason: str) -> None:
        add_error(self.result, self.options, location, reason)

    def add(self, key: SeriesKey, t_us: int, value: float, location: str) -> bool:
        """Add one sample; returns False once the sample limit is reached and parsing should stop."""
        if self.full:
            return False
        if not self.lo <= t_us <= self.hi:
            self.error(location, self.options.time_problem(t_us) or "timestamp out of range")
            return True
        if not math.isfinite(value):
            if self.options.nan_policy == "drop":
                self.result.skipped["non_finite"] += 1
            else:
                self.error(location, f"value {value!r} is not a finite number")
            return True
        if len(self.result.values) >= self.options.max_samples:
            self.error(location, TOO_MANY_SAMPLES.format(limit=self.options.max_samples))
            self.full = True
            return False
        self._append_key(key)
        self._append_time(t_us)
        self._append_value(value)
        return True


def add_error(result: ParseResult, options: ParseOptions, location: str, reason: str) -> None:
    """Record a rejection, listing at most ``options.max_errors`` of them."""
    if len(result.errors) < options.max_errors:
        result.errors.append(ParseError(location, reason))
    else:
        result.skipped["unlisted_errors"] += 1
