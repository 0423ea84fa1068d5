"""Wire-format parsers for metrics ingest: pure Python, no Django, no database.

Each parser turns one request body into a :class:`ParseResult` of columns (series key, epoch
microseconds, float value) plus per-line/item errors; see ``types`` for the contract and the
format modules for each mapping onto the Prometheus data model.
"""

from __future__ import annotations

from apps.metrics.ingest.collectd import parse_collectd_json
from apps.metrics.ingest.influx import parse_line_protocol
from apps.metrics.ingest.native_json import parse_agent_payload, parse_metrics_json, parse_probe_payload
from apps.metrics.ingest.prometheus import parse_remote_write
from apps.metrics.ingest.types import (
    MetricMetadata,
    ParseError,
    ParseOptions,
    ParseResult,
    PayloadError,
    SeriesKey,
)

__all__ = [
    "MetricMetadata",
    "ParseError",
    "ParseOptions",
    "ParseResult",
    "PayloadError",
    "SeriesKey",
    "parse_agent_payload",
    "parse_collectd_json",
    "parse_line_protocol",
    "parse_metrics_json",
    "parse_probe_payload",
    "parse_remote_write",
]
