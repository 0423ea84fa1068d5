"""Prometheus remote_write parser: captured Prometheus 2.42 bodies replayed, plus hand-built requests."""

from __future__ import annotations

import json
import math
import struct

import cramjam
import pytest

from apps.metrics.ingest.prometheus import Label, Sample, TimeSeries, WriteRequest, parse_remote_write
from apps.metrics.ingest.types import ParseOptions, ParseResult, PayloadError
from tests.metrics.factories import FIXTURES

CAPTURED_AT_MS = 1795305235185  # the sample timestamp in prom_rw_01
NOW_US = CAPTURED_AT_MS * 1000 + 1_000_000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def opts(**kwargs: object) -> ParseOptions:
    return ParseOptions(now_us=NOW_US, **kwargs)  # type: ignore[arg-type]


def write_request(*series: tuple[dict[str, str], list[tuple[float, int]]], exemplars: int = 0) -> bytes:
    """Serialize a WriteRequest the way Prometheus does (labels in the given order) and snappy it."""
    request = WriteRequest()
    for labels, points in series:
        ts = request.timeseries.add()
        ts.labels.extend(Label(name=k, value=v).SerializeToString() for k, v in labels.items())
        ts.samples.extend(Sample(value=v, timestamp=t) for v, t in points)
        ts.exemplars.extend(b"\x10\x01" for _ in range(exemplars))
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def parse(body: bytes, **kwargs: object) -> ParseResult:
    return parse_remote_write(body, opts(**kwargs))


def test_captured_remote_write_body_decodes_to_exactly_the_reference_json() -> None:
    expected = json.loads((FIXTURES / "prom_rw_01.decoded.json").read_text())["timeseries"]
    result = parse((FIXTURES / "prom_rw_01.snappy.pb").read_bytes())

    assert not result.errors
    assert len(result) == 500
    decoded = []
    for series in expected:
        labels = {label["name"]: label["value"] for label in series["labels"]}
        name = labels.pop("__name__")
        for sample in series["samples"]:
            value = sample["value"]
            decoded.append(((name, tuple(sorted(labels.items()))), int(sample["timestamp"]) * 1000, float(value)))
    got = list(zip(result.keys, result.times_us, result.values, strict=True))
    assert got == decoded
    assert all(dict(key[1])["lab"] == "peers" and dict(key[1])["job"] == "node" for key in result.keys)
    assert (
        "go_gc_duration_seconds",
        (("instance", "127.0.0.1:58100"), ("job", "node"), ("lab", "peers"), ("quantile", "0.25")),
    ) in result.keys


def test_captured_metadata_only_body_yields_283_metadata_and_no_samples() -> None:
    expected = json.loads((FIXTURES / "prom_rw_metadata_01.decoded.json").read_text())["metadata"]
    result = parse((FIXTURES / "prom_rw_metadata_01.snappy.pb").read_bytes())

    assert len(result) == 0
    assert not result.errors
    assert len(result.metadata) == 283
    assert [(m.name, m.type, m.help, m.unit) for m in result.metadata] == [
        (m["metricFamilyName"], m.get("type", "UNKNOWN").lower(), m.get("help", ""), m.get("unit", ""))
        for m in expected
    ]
    assert result.metadata[0].name == "node_memory_Hugetlb_bytes"
    assert result.metadata[0].type == "gauge"


@pytest.mark.parametrize("encoding", ["identity", "", "IDENTITY"])
def test_uncompressed_body_is_accepted_for_identity_encoding(encoding: str) -> None:
    raw = bytes(cramjam.snappy.decompress_raw((FIXTURES / "prom_rw_01.snappy.pb").read_bytes()))
    result = parse_remote_write(raw, opts(), content_encoding=encoding)
    assert len(result) == 500


def test_timestamps_are_milliseconds_converted_to_microseconds() -> None:
    result = parse(write_request(({"__name__": "up", "job": "x"}, [(1.0, CAPTURED_AT_MS), (0.0, CAPTURED_AT_MS + 5)])))
    assert result.times_us == [CAPTURED_AT_MS * 1000, (CAPTURED_AT_MS + 5) * 1000]
    assert result.keys[0] == ("up", (("job", "x"),))
    assert result.keys[0] is result.keys[1]


def test_staleness_markers_are_always_dropped_and_counted() -> None:
    body = write_request(({"__name__": "up"}, [(STALE_NAN, CAPTURED_AT_MS), (1.0, CAPTURED_AT_MS)]))
    for policy in ("drop", "reject"):
        result = parse(body, nan_policy=policy)
        assert result.values == [1.0]
        assert result.skipped["stale_markers"] == 1
        assert not result.errors


def test_other_nans_follow_the_nan_policy() -> None:
    body = write_request(({"__name__": "up"}, [(math.nan, CAPTURED_AT_MS), (math.inf, CAPTURED_AT_MS)]))
    dropped = parse(body)
    assert len(dropped) == 0 and dropped.skipped["non_finite"] == 2
    rejected = parse(body, nan_policy="reject")
    assert [e.location for e in rejected.errors] == ["timeseries 0", "timeseries 0"]
    assert "not a finite number" in rejected.errors[0].reason


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"job": "x"}, "missing metric name"),
        ({"__name__": "bad-name"}, "invalid metric name"),
        ({"__name__": "up", "bad-label": "x"}, "invalid label name"),
        ({"__name__": "up", "__meta_x": "x"}, "reserved"),
        ({"__name__": "up", "a": "x" * 2049}, "value is 2049 bytes long; the limit is 2048"),
    ],
)
def test_invalid_series_are_rejected_by_index_and_others_kept(labels: dict[str, str], reason: str) -> None:
    body = write_request(({"__name__": "good"}, [(1.0, CAPTURED_AT_MS)]), (labels, [(2.0, CAPTURED_AT_MS)]))
    result = parse(body)
    assert result.values == [1.0]
    assert result.errors[0].location == "timeseries 1"
    assert reason in result.errors[0].reason


def test_duplicate_labels_are_rejected() -> None:
    request = WriteRequest()
    ts = request.timeseries.add()
    pairs = [("__name__", "up"), ("a", "1"), ("a", "2")]
    ts.labels.extend(Label(name=k, value=v).SerializeToString() for k, v in pairs)
    ts.samples.append(Sample(value=1.0, timestamp=CAPTURED_AT_MS))
    result = parse_remote_write(request.SerializeToString(), opts(), content_encoding="identity")
    assert "duplicate label name 'a'" in result.errors[0].reason


def test_empty_label_values_are_dropped_like_prometheus_does() -> None:
    result = parse(write_request(({"__name__": "up", "a": "", "b": "1"}, [(1.0, CAPTURED_AT_MS)])))
    assert result.keys == [("up", (("b", "1"),))]


def test_samples_outside_the_window_are_rejected() -> None:
    future_ms = NOW_US // 1000 + 601_000
    result = parse(write_request(({"__name__": "up"}, [(1.0, future_ms), (2.0, CAPTURED_AT_MS)])))
    assert result.values == [2.0]
    assert result.errors[0].location == "timeseries 0"
    assert "more than 600 s in the future" in result.errors[0].reason


def test_max_samples_stops_and_keeps_earlier_samples() -> None:
    body = write_request(({"__name__": "up"}, [(float(i), CAPTURED_AT_MS + i) for i in range(5)]))
    result = parse(body, max_samples=3)
    assert result.values == [0.0, 1.0, 2.0]
    assert "limit is 3" in result.errors[0].reason


def test_exemplars_are_counted_not_stored() -> None:
    result = parse(write_request(({"__name__": "up"}, [(1.0, CAPTURED_AT_MS)]), exemplars=2))
    assert len(result) == 1
    assert result.skipped["exemplars"] == 2


def test_an_empty_request_is_valid_and_empty() -> None:
    result = parse(bytes(cramjam.snappy.compress_raw(b"")))
    assert len(result) == 0 and not result.errors and not result.metadata


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        (b"not snappy at all", "snappy", "not valid snappy"),
        (b"\xff\xff\xff\xff\xff\xff", "snappy", "bad length header"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\x05\x0a\x03")), "snappy", "not a valid protobuf"),
        (b"\x0a\xff", "identity", "not a valid protobuf"),
        (b"", "gzip", "unsupported Content-Encoding"),
    ],
)
def test_unreadable_bodies_raise_payload_error(body: bytes, encoding: str, reason: str) -> None:
    with pytest.raises(PayloadError) as excinfo:
        parse_remote_write(body, opts(), content_encoding=encoding)
    assert reason in excinfo.value.reason
    assert excinfo.value.as_dict()["location"] == "body"


def test_snappy_bombs_are_refused_before_decompressing() -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\x00" * 100_000))
    with pytest.raises(PayloadError, match="limit is 1000"):
        parse_remote_write(body, opts(), max_decoded_bytes=1000)


def test_metric_type_enum_values_map_to_lowercase_names() -> None:
    request = WriteRequest()
    for number in range(9):
        meta = request.metadata.add()
        meta.type = number  # 8 is unknown to this schema: reported as "unknown"
        meta.metric_family_name = f"m{number}".encode()
    result = parse(bytes(cramjam.snappy.compress_raw(request.SerializeToString())))
    assert [m.type for m in result.metadata] == [
        "unknown",
        "counter",
        "gauge",
        "histogram",
        "gaugehistogram",
        "summary",
        "info",
        "stateset",
        "unknown",
    ]


def test_timeseries_class_is_exported_for_building_requests() -> None:
    assert TimeSeries.DESCRIPTOR.full_name == "prometheus.TimeSeries"
