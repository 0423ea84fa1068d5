"""FiberStack JSON formats: metrics batch, probe payload and agent payload."""

from __future__ import annotations

import json

import pytest

from apps.metrics.ingest.native_json import (
    parse_agent_payload,
    parse_metrics_json,
    parse_probe_payload,
    parse_timestamp,
)
from apps.metrics.ingest.types import ParseOptions, ParseResult, PayloadError

NOW_US = 1_795_305_600_000_000  # 2026-11-22T00:00:00Z
NOW_ISO = "2026-11-22T00:00:00Z"
NODE = "9f0c5d2a-1111-4222-8333-444455556666"


def opts(**kwargs: object) -> ParseOptions:
    return ParseOptions(now_us=NOW_US, **kwargs)  # type: ignore[arg-type]


def dumps(body: object) -> bytes:
    return json.dumps(body).encode()


def samples(result: ParseResult) -> list[tuple[str, dict[str, str], int, float]]:
    return [(k[0], dict(k[1]), t, v) for k, t, v in zip(result.keys, result.times_us, result.values, strict=True)]


def errors(result: ParseResult) -> list[tuple[str, str]]:
    return [(e.location, e.reason) for e in result.errors]


# ---- timestamps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T00:00:00Z", NOW_US),
        ("2026-11-22t00:00:00z", NOW_US),
        ("2026-11-22 00:00:00Z", NOW_US),
        ("2026-11-22T00:00:00.5Z", NOW_US + 500_000),
        ("2026-11-22T00:00:00.123456789Z", NOW_US + 123_456),
        ("2026-11-22T01:30:00+01:30", NOW_US),
        ("2026-11-21T22:00:00-02:00", NOW_US),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_rfc3339_timestamps_become_epoch_microseconds(text: str, expected: int) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22",
        "2026-11-22T00:00:00",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "2026-11-22T00:00:00+25:00",
        "2026-11-22T24:00:00Z",
        "\uff12\uff10\uff12\uff16-11-22T00:00:00Z",
    ],
)
def test_invalid_or_offsetless_rfc3339_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_iso_timestamps_without_offset_are_utc_when_allowed() -> None:
    assert parse_timestamp("2026-11-22T00:00:00", require_offset=False) == NOW_US


# ---- metrics batch ---------------------------------------------------------------------------------------


def test_metrics_batch_as_array_or_wrapped_object() -> None:
    items = [{"name": "temp", "value": 21.5, "time": NOW_US / 1e6}, {"name": "hum", "value": 40}]
    expected = [("temp", {}, NOW_US, 21.5), ("hum", {}, NOW_US, 40.0)]
    assert samples(parse_metrics_json(dumps(items), opts())) == expected
    assert samples(parse_metrics_json(dumps({"metrics": items}), opts())) == expected


def test_metrics_item_with_every_field() -> None:
    body = dumps(
        [
            {
                "host": "web-1",
                "name": "http.requests-total",
                "value": 3,
                "time": "2026-11-21T23:59:00Z",
                "labels": {"method": "GET", "status code": "200", "host": "ignored"},
                "unit": "requests",
            }
        ]
    )
    result = parse_metrics_json(body, opts())
    key = ("http_requests_total", (("host", "web-1"), ("method", "GET"), ("status_code", "200")))
    assert samples(result) == [(key[0], dict(key[1]), NOW_US - 60_000_000, 3.0)]
    assert result.units == {key: "requests"}


def test_metrics_labels_without_host_field_keep_their_host_label() -> None:
    result = parse_metrics_json(dumps([{"name": "m", "value": 1, "labels": {"host": "a"}}]), opts())
    assert result.keys == [("m", (("host", "a"),))]


@pytest.mark.parametrize(
    ("item", "location", "reason"),
    [
        ({"value": 1}, "item 1, field 'name'", "is required"),
        ({"name": "", "value": 1}, "item 1, field 'name'", "empty"),
        ({"name": "m"}, "item 1, field 'value'", "is required"),
        ({"name": "m", "value": "1"}, "item 1, field 'value'", "must be a number, not a string"),
        ({"name": "m", "value": True}, "item 1, field 'value'", "must be a number, not a boolean"),
        ({"name": "m", "value": None}, "item 1, field 'value'", "must be a number, not null"),
        ({"name": "m", "value": 1, "time": "2026-11-22"}, "item 1, field 'time'", "not an RFC 3339"),
        ({"name": "m", "value": 1, "time": NOW_US}, "item 1, field 'time'", "milliseconds or nanoseconds"),
        ({"name": "m", "value": 1, "time": [1]}, "item 1, field 'time'", "not an array"),
        ({"name": "m", "value": 1, "labels": {"a": 1}}, "item 1, field 'labels'", "must be a string"),
        ({"name": "m", "value": 1, "labels": ["a"]}, "item 1, field 'labels'", "must be an object"),
        ({"name": "m", "value": 1, "labels": {"__x": "1"}}, "item 1, field 'labels'", "reserved"),
        ({"name": "m", "value": 1, "host": 5}, "item 1, field 'host'", "must be a string, not a number"),
        ({"name": "m", "value": 1, "unit": "x" * 65}, "item 1, field 'unit'", "unit is 65 characters long"),
        ({"name": "m", "value": 1, "time": NOW_US / 1e6 + 601}, "item 1", "more than 600 s in the future"),
        ("m", "item 1", "expected an object, not a string"),
    ],
)
def test_metrics_batch_errors_name_item_and_field(item: object, location: str, reason: str) -> None:
    result = parse_metrics_json(dumps([{"name": "ok", "value": 1}, item, {"name": "ok2", "value": 2}]), opts())
    assert result.values == [1.0, 2.0]
    assert len(result.errors) == 1
    assert result.errors[0].location == location
    assert reason in result.errors[0].reason


def test_metrics_batch_nan_policy() -> None:
    body = b'[{"name": "m", "value": NaN}, {"name": "m", "value": -Infinity}]'
    assert parse_metrics_json(body, opts()).skipped["non_finite"] == 2
    assert [e.location for e in parse_metrics_json(body, opts(nan_policy="reject")).errors] == ["item 0", "item 1"]


def test_metrics_batch_max_samples() -> None:
    result = parse_metrics_json(dumps([{"name": "m", "value": i} for i in range(10)]), opts(max_samples=4))
    assert result.values == [0.0, 1.0, 2.0, 3.0]
    assert result.errors[0].location == "item 4"


@pytest.mark.parametrize("body", [b"", b"nope", b"{}", b'{"metrics": 5}', b"5", b'"x"', b"[" * 50_000])
def test_metrics_batch_unreadable_bodies_raise_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError) as excinfo:
        parse_metrics_json(body, opts())
    assert excinfo.value.reason


# ---- probe payload ---------------------------------------------------------------------------------------


def probe(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "node_id": NODE,
        "country": "DE",
        "region": "eu-central",
        "timestamp": NOW_ISO,
        "latency_ms": 12.5,
        "uptime_pct": 99.9,
        "packet_loss": 0.0,
        "metadata": {"isp": "Example"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def test_probe_payload_gives_three_series_and_the_host_inventory() -> None:
    result = parse_probe_payload(dumps(probe()), opts())
    labels = {"country": "DE", "node_id": NODE, "region": "eu-central"}
    assert samples(result) == [
        ("probe_latency_ms", labels, NOW_US, 12.5),
        ("probe_uptime_pct", labels, NOW_US, 99.9),
        ("probe_packet_loss", labels, NOW_US, 0.0),
    ]
    assert result.hosts == {
        NODE: {"country": "DE", "region": "eu-central", "last_seen_us": NOW_US, "metadata": {"isp": "Example"}}
    }
    assert result.units[result.keys[0]] == "ms"


def test_probe_node_id_is_normalized_and_naive_timestamps_are_utc() -> None:
    result = parse_probe_payload(dumps(probe(node_id=NODE.upper(), timestamp="2026-11-22T00:00:00")), opts())
    assert list(result.hosts) == [NODE]
    assert result.times_us[0] == NOW_US


def test_probe_numbers_are_optional_but_one_is_required() -> None:
    result = parse_probe_payload(dumps(probe(latency_ms=..., uptime_pct=...)), opts())
    assert [k[0] for k in result.keys] == ["probe_packet_loss"]
    result = parse_probe_payload(dumps(probe(latency_ms=..., uptime_pct=..., packet_loss=...)), opts())
    assert len(result) == 0
    assert "at least one of" in result.errors[0].reason
    assert not result.hosts


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"node_id": "node-1"}, "node_id", "UUID"),
        ({"node_id": ...}, "node_id", "is required"),
        ({"country": "de"}, "country", "must match ^[A-Z]{2}$"),
        ({"country": "DEU"}, "country", "must match ^[A-Z]{2}$"),
        ({"country": "DE\n"}, "country", "must match ^[A-Z]{2}$"),
        ({"region": ""}, "region", "non-empty"),
        ({"region": "   "}, "region", "non-empty"),
        ({"region": 5}, "region", "non-empty"),
        ({"timestamp": ...}, "timestamp", "is required"),
        ({"timestamp": 1795305600}, "timestamp", "ISO 8601"),
        ({"timestamp": "soon"}, "timestamp", "not an RFC 3339"),
        ({"timestamp": "2026-11-22T00:20:00Z"}, "timestamp", "in the future"),
        ({"latency_ms": -1}, "latency_ms", "between 0 and 10000"),
        ({"latency_ms": 10000.5}, "latency_ms", "between 0 and 10000"),
        ({"uptime_pct": 100.1}, "uptime_pct", "between 0 and 100"),
        ({"packet_loss": "0"}, "packet_loss", "must be a number"),
        ({"packet_loss": False}, "packet_loss", "must be a number"),
        ({"metadata": []}, "metadata", "must be an object"),
    ],
)
def test_probe_validation_errors_name_the_field(overrides: dict[str, object], field: str, reason: str) -> None:
    result = parse_probe_payload(dumps(probe(**overrides)), opts())
    assert len(result) == 0
    assert not result.hosts
    assert [e.location for e in result.errors] == [f"field '{field}'"]
    assert reason in result.errors[0].reason


def test_probe_with_several_bad_fields_lists_each_of_them() -> None:
    result = parse_probe_payload(dumps([probe(), probe(country="x", latency_ms=-5)]), opts())
    assert len(result) == 3
    assert [e.location for e in result.errors] == ["item 1, field 'country'", "item 1, field 'latency_ms'"]


def test_probe_list_keeps_the_latest_inventory_per_node() -> None:
    older = probe(timestamp="2026-11-21T23:00:00Z", region="old", metadata=...)
    result = parse_probe_payload(dumps([probe(), older]), opts())
    assert len(result) == 6
    assert result.hosts[NODE]["region"] == "eu-central"


def test_probe_nan_follows_the_policy() -> None:
    body = json.dumps(probe(latency_ms=float("nan"))).encode()
    dropped = parse_probe_payload(body, opts())
    assert len(dropped) == 2 and dropped.skipped["non_finite"] == 1
    rejected = parse_probe_payload(body, opts(nan_policy="reject"))
    assert rejected.errors[0].location == "field 'latency_ms'"


@pytest.mark.parametrize("body", [b"[", b"5", b'"probe"', b"null"])
def test_probe_unreadable_bodies_raise_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_probe_payload(body, opts())


def test_probe_list_items_that_are_not_objects_are_errors() -> None:
    result = parse_probe_payload(dumps([probe(), 5]), opts())
    assert errors(result) == [("item 1", "expected an object, not a number")]


# ---- agent payload ---------------------------------------------------------------------------------------


def test_agent_payload_is_flattened_with_index_labels() -> None:
    body = dumps(
        {
            "timestamp": NOW_ISO,
            "load1": 0.5,
            "cpu": {"percent": 12.5, "per_core": [10, 15.5]},
            "memory": {"used": 1, "total": 2},
            "os": "linux",
            "online": True,
            "swap": None,
        }
    )
    result = parse_agent_payload("web-1", body, opts())
    h = {"host": "web-1"}
    assert samples(result) == [
        ("load1", h, NOW_US, 0.5),
        ("cpu_percent", h, NOW_US, 12.5),
        ("cpu_per_core", {**h, "index": "0"}, NOW_US, 10.0),
        ("cpu_per_core", {**h, "index": "1"}, NOW_US, 15.5),
        ("memory_used", h, NOW_US, 1.0),
        ("memory_total", h, NOW_US, 2.0),
    ]
    assert result.skipped["non_numeric"] == 3
    assert not result.errors


def test_agent_labels_apply_to_all_and_host_is_always_the_authenticated_one() -> None:
    body = dumps({"time": NOW_US / 1e6 - 5, "labels": {"env": "prod", "host": "spoofed"}, "disk.used%": 3})
    result = parse_agent_payload("web-1", body, opts())
    assert samples(result) == [("disk_used_", {"env": "prod", "host": "web-1"}, NOW_US - 5_000_000, 3.0)]


def test_agent_arrays_of_objects_get_index_labels_and_nested_arrays_are_skipped() -> None:
    body = dumps({"disks": [{"name": "sda", "used": 1}, {"name": "sdb", "used": 2}], "matrix": [[1, 2]]})
    result = parse_agent_payload("h", body, opts())
    assert samples(result) == [
        ("disks_used", {"host": "h", "index": "0"}, NOW_US, 1.0),
        ("disks_used", {"host": "h", "index": "1"}, NOW_US, 2.0),
    ]
    assert result.skipped["nested_arrays"] == 1


def test_agent_missing_timestamp_means_now() -> None:
    assert parse_agent_payload("h", dumps({"x": 1}), opts()).times_us == [NOW_US]


def test_agent_errors_name_the_field() -> None:
    body = dumps({"a": {"b": 1}, "a_b": 2, "deep": {"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": 1}}}}}}}}})
    result = parse_agent_payload("h", body, opts())
    assert result.values == [1.0]
    assert errors(result) == [
        ("field 'a_b'", "duplicate series 'a_b' (names are joined with '_')"),
        ("field 'deep.1.2.3.4.5.6.7.8'", "nested deeper than 8 levels"),
    ]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"timestamp": "nope", "x": 1}, "field 'timestamp'"),
        ({"time": True, "x": 1}, "field 'time'"),
        ({"labels": {"a": 1}, "x": 1}, "field 'labels'"),
        ({"labels": {"__a": "1"}, "x": 1}, "field 'labels'"),
        ({"timestamp": "2020-01-01T00:00:00Z", "x": 1}, "field 'x'"),
    ],
)
def test_agent_payload_wide_problems_store_nothing(body: dict[str, object], location: str) -> None:
    result = parse_agent_payload("h", dumps(body), opts())
    assert len(result) == 0
    assert result.errors[0].location == location


@pytest.mark.parametrize(("host", "body"), [("h", b"[1]"), ("h", b"{"), ("", b"{}"), ("x" * 1025, b"{}")])
def test_agent_unreadable_bodies_or_bad_host_raise_payload_error(host: str, body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_agent_payload(host, body, opts())


def test_agent_max_samples() -> None:
    result = parse_agent_payload("h", dumps({"v": list(range(10))}), opts(max_samples=3))
    assert result.values == [0.0, 1.0, 2.0]
    assert result.errors[0].location == "field 'v[3]'"
