"""Prometheus remote_write 1.0 -> FiberStack samples.

A remote_write 1.0 body is a protobuf ``prometheus.WriteRequest`` compressed with snappy in the *block*
format (not the framed/stream format): https://prometheus.io/docs/specs/remote_write_spec/ .
The schema we decode is the minimal one in ``tests/fixtures/prom_remote_write.proto`` (TimeSeries,
Label, Sample, Exemplar, MetricMetadata, with Prometheus 2.x field numbers).

Decoding: the message classes are built once at import time from a ``FileDescriptorProto`` written out
in Python (no protoc step, no generated ``_pb2`` file to keep in sync) and parsed by the protobuf
package's C backend (upb). Chosen by measurement on the captured 500-series body
(``bench/parsers.py --decoders``, CPU time on the 2-core dev box): a hand-written pure-Python wire
decoder took ~1.05 ms even without any validation, upb with ``Label`` messages ~1.5 ms (building a
Python object per label dominates), and upb with ``TimeSeries.labels`` declared as opaque ``bytes``
~0.7 ms. We use the last: fastest, and upb keeps doing the bounds and wire-type checks that a hand
decoder would have to get right for hostile input. The raw label bytes are the cache key for the
validated series key, so a series Prometheus resends every scrape costs one dict lookup; each
``Label`` is decoded (and its UTF-8 checked) only on a cache miss. Exemplars and native histograms
(field 4) are declared as opaque bytes too: they are counted, not decoded.

Mapping:

* ``__name__`` is the metric name; the other labels become labels. Names are *validated*, not
  sanitized (Prometheus already enforces the rules), and a series breaking them, or the limits of
  ``validation``, is rejected with ``timeseries N`` (0-based) as its location. Labels with empty
  values are dropped, as in Prometheus.
* sample timestamps are milliseconds; they are stored as microseconds.
* staleness markers (the NaN with bit pattern ``0x7ff0000000000002`` that Prometheus writes when a
  series disappears) are always dropped and counted in ``skipped['stale_markers']``; any other NaN or
  Inf follows ``options.nan_policy``.
* metadata (field 3) becomes ``ParseResult.metadata``; the type enum is lower-cased (``counter``...).
* exemplars and native histograms are not stored; they are counted in ``skipped``.
"""

from __future__ import annotations

import struct
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from apps.metrics.ingest.naming import intern_key, is_valid_label_name, is_valid_metric_name
from apps.metrics.ingest.types import (
    TOO_MANY_SAMPLES,
    MetricMetadata,
    ParseOptions,
    ParseResult,
    PayloadError,
    SampleSink,
    SeriesKey,
    SeriesLimits,
)
from apps.metrics.ingest.validation import (
    labels_problem,
    name_problem,
    register_cache,
    storable_text_problem,
    unit_problem,
    use_limits,
)

__all__ = ["STALE_NAN_BITS", "parse_remote_write"]

#: Prometheus' staleness marker (value.StaleNaN in prometheus/model/value).
STALE_NAN_BITS = 0x7FF0000000000002
_STALE_NAN_BYTES = struct.pack("<Q", STALE_NAN_BITS)
_pack_double = struct.Struct("<d").pack

#: A snappy body may expand ~20x; refuse to allocate more than this for one request.
DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024

_METRIC_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")
# Roughly 1 KB per series (raw label bytes + decoded key): bounded near 50 MB per process.
_LABEL_KEY_CACHE_MAX = 50_000


def _build_messages() -> tuple[type, ...]:
    """Create the WriteRequest message classes from a hand-built descriptor (see module docstring)."""
    fdp = descriptor_pb2.FileDescriptorProto(name="fiberstack_prom_remote_write.proto", package="prometheus")
    fdp.syntax = "proto3"
    f = descriptor_pb2.FieldDescriptorProto
    rep, opt = f.LABEL_REPEATED, f.LABEL_OPTIONAL

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> descriptor_pb2.DescriptorProto:
        msg = fdp.message_type.add(name=name)
        for field_name, number, label, ftype, type_name in fields:
            fd = msg.field.add(name=field_name, number=number, label=label, type=ftype)
            if type_name:
                fd.type_name = type_name
        return msg

    message("Label", [("name", 1, opt, f.TYPE_STRING, ""), ("value", 2, opt, f.TYPE_STRING, "")])
    message("Sample", [("value", 1, opt, f.TYPE_DOUBLE, ""), ("timestamp", 2, opt, f.TYPE_INT64, "")])
    message(
        "TimeSeries",
        [
            # Same wire format as repeated Label / Exemplar messages, read as raw bytes (see docstring).
            ("labels", 1, rep, f.TYPE_BYTES, ""),
            ("samples", 2, rep, f.TYPE_MESSAGE, ".prometheus.Sample"),
            ("exemplars", 3, rep, f.TYPE_BYTES, ""),
            ("histograms", 4, rep, f.TYPE_BYTES, ""),
        ],
    )
    md = message(
        "MetricMetadata",
        [
            ("type", 1, opt, f.TYPE_ENUM, ".prometheus.MetricMetadata.MetricType"),
            # Bytes on the wire as for strings; read as bytes so that one entry that is not UTF-8 costs
            # that entry (decoded in _metadata_fields), not the whole body (protobuf refuses the message).
            ("metric_family_name", 2, opt, f.TYPE_BYTES, ""),
            ("help", 4, opt, f.TYPE_BYTES, ""),
            ("unit", 5, opt, f.TYPE_BYTES, ""),
        ],
    )
    enum = md.enum_type.add(name="MetricType")
    for number, type_name in enumerate(_METRIC_TYPES):
        enum.value.add(name=type_name.upper(), number=number)
    message(
        "WriteRequest",
        [
            ("timeseries", 1, rep, f.TYPE_MESSAGE, ".prometheus.TimeSeries"),
            ("metadata", 3, rep, f.TYPE_MESSAGE, ".prometheus.MetricMetadata"),
        ],
    )
    # A private pool: the default pool may already hold a differently shaped "prometheus" package.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in ("WriteRequest", "TimeSeries", "Label", "Sample", "MetricMetadata")
    )


WriteRequest, TimeSeries, Label, Sample, MetricMetadataMessage = _build_messages()

# Raw label bytes as sent (including __name__) -> series key or the reason they are invalid. Prometheus
# resends the same series every scrape interval, so validation runs once per series per process.
_label_key_cache: dict[tuple[bytes, ...], SeriesKey | str] = {}
register_cache(_label_key_cache.clear)


def parse_remote_write(
    body: bytes,
    options: ParseOptions,
    content_encoding: str = "snappy",
    *,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> ParseResult:
    """Decode a remote_write body; a bad series is an error, the others are kept."""
    request = WriteRequest()
    try:
        request.ParseFromString(decompress(body, content_encoding, max_decoded_bytes))
    except DecodeError as exc:
        raise PayloadError(f"body is not a valid protobuf WriteRequest: {exc}") from None

    use_limits(options.limits)
    result = ParseResult()
    sink = SampleSink(result, options)
    skipped = result.skipped
    keys_append = result.keys.append
    times_append = result.times_us.append
    values_append = result.values.append
    lo = options.min_time_us
    hi = options.max_time_us
    room = options.max_samples
    drop_nan = options.nan_policy == "drop"
    cache = _label_key_cache
    # The per-sample rules of SampleSink, inlined: this loop runs once per sample.
    for index, series in enumerate(request.timeseries):
        raw_labels = tuple(series.labels)
        key = cache.get(raw_labels)
        if key is None:
            key = _series_key(raw_labels, options.limits)
            if len(cache) >= _LABEL_KEY_CACHE_MAX:
                cache.clear()
            cache[raw_labels] = key
        if key.__class__ is str:
            sink.error(f"timeseries {index}", key)  # type: ignore[arg-type]
            continue
        if series.exemplars:
            skipped["exemplars"] += len(series.exemplars)
        if series.histograms:
            skipped["native_histograms"] += len(series.histograms)
        for sample in series.samples:
            value = sample.value
            t = sample.timestamp * 1000
            if value - value != 0.0:  # NaN or Inf
                if value != value and _pack_double(value) == _STALE_NAN_BYTES:
                    skipped["stale_markers"] += 1
                elif drop_nan:
                    skipped["non_finite"] += 1
                else:
                    sink.error(f"timeseries {index}", f"value {value!r} is not a finite number")
                continue
            if t < lo or t > hi:
                sink.error(f"timeseries {index}", options.time_problem(t) or "timestamp out of range")
                continue
            if not room:
                sink.error(f"timeseries {index}", TOO_MANY_SAMPLES.format(limit=options.max_samples))
                return result
            room -= 1
            keys_append(key)
            times_append(t)
            values_append(value)
    for index, meta in enumerate(request.metadata):
        fields = _metadata_fields(meta)
        problem = fields if isinstance(fields, str) else _metadata_problem(*fields, options.limits)
        if problem:
            sink.error(f"metadata {index}", problem)
            continue
        name, help_text, unit = fields
        mtype = meta.type
        result.metadata.append(
            MetricMetadata(
                name=name,
                type=_METRIC_TYPES[mtype] if 0 <= mtype < len(_METRIC_TYPES) else "unknown",
                help=help_text,
                unit=unit,
            )
        )
    return result


def _metadata_fields(meta: Any) -> tuple[str, str, str] | str:
    """(metric family name, help, unit) as text, or why one of them is not UTF-8."""
    decoded: list[str] = []
    for field, label in (("metric_family_name", "metric family name"), ("help", "help"), ("unit", "unit")):
        try:
            decoded.append(getattr(meta, field).decode("utf-8"))
        except UnicodeDecodeError as exc:
            return f"{label} is not valid UTF-8 (byte {exc.object[exc.start]:#04x} at {exc.start})"
    return decoded[0], decoded[1], decoded[2]


def _metadata_problem(name: str, help_text: str, unit: str, limits: SeriesLimits) -> str | None:
    """Why one MetricMetadata cannot be stored (its name, unit and help reach database columns), or None."""
    if not is_valid_metric_name(name):
        return f"invalid metric family name {name!r}"
    problem = name_problem(name, limits, "metric family name") or unit_problem(unit, limits)
    if problem:
        return problem
    bad = storable_text_problem(help_text)
    return f"help {bad}" if bad else None


def decompress(body: bytes, content_encoding: str, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> bytes:
    """Undo the Content-Encoding; snappy is the block format, with its declared size checked first."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_decoded_bytes:
            raise PayloadError(f"body is larger than {max_decoded_bytes} bytes")
        return bytes(body)
    if encoding != "snappy":
        raise PayloadError(f"unsupported Content-Encoding {content_encoding!r}: use snappy or identity")
    declared = _snappy_declared_length(body)
    if declared > max_decoded_bytes:
        raise PayloadError(f"snappy body would decompress to {declared} bytes; the limit is {max_decoded_bytes}")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError and sometimes ValueError
        raise PayloadError(f"body is not valid snappy (block format): {exc}") from None


def _snappy_declared_length(body: bytes) -> int:
    """Read the uncompressed length varint that starts every snappy block, to refuse bombs cheaply."""
    length = shift = 0
    for i, byte in enumerate(body[:5]):
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
        if i == 4:
            break
    raise PayloadError("body is not valid snappy (block format): bad length header")


def _series_key(raw_labels: tuple[bytes, ...], limits: SeriesLimits) -> SeriesKey | str:
    """Decode and validate one series' labels; returns its key, or the reason it is rejected."""
    name = ""
    labels: dict[str, str] = {}
    for raw in raw_labels:
        try:
            label = Label.FromString(raw)
        except DecodeError:
            return "label is not a valid protobuf Label (or not UTF-8)"
        label_name, value = label.name, label.value
        if label_name == "__name__":
            if name:
                return "duplicate label name '__name__'"
            name = value
            continue
        if not is_valid_label_name(label_name):
            return f"invalid label name {label_name!r}"
        if label_name.startswith("__"):
            return f"label name {label_name!r} is reserved (names starting with '__' are internal)"
        if label_name in labels:
            return f"duplicate label name {label_name!r}"
        labels[label_name] = value
    if not name:
        return "missing metric name (label '__name__')"
    if not is_valid_metric_name(name):
        return f"invalid metric name {name!r}"
    pairs = tuple(sorted((k, v) for k, v in labels.items() if v))
    problem = name_problem(name, limits) or labels_problem(pairs, limits)
    return problem or intern_key((name, pairs))
