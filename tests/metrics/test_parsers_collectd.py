"""collectd write_http JSON parser: captured collectd 5.12 bodies replayed, plus error handling."""

from __future__ import annotations

import json
import re

import pytest

from apps.metrics.ingest.collectd import parse_collectd_json
from apps.metrics.ingest.types import ParseOptions, ParseResult, PayloadError
from tests.metrics.factories import FIXTURES

NOW_US = 1795305240_000000  # a few seconds after the captures
HOST = "lab-peers-collectd"


def opts(**kwargs: object) -> ParseOptions:
    return ParseOptions(now_us=NOW_US, **kwargs)  # type: ignore[arg-type]


def parse(body: object, **kwargs: object) -> ParseResult:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_collectd_json(raw, opts(**kwargs))


def expected_samples(body: bytes) -> list[tuple[str, dict[str, str], int, float]]:
    """The documented mapping, written out independently of the parser."""
    out = []
    for item in json.loads(body):
        for value, dstype, dsname in zip(item["values"], item["dstypes"], item["dsnames"], strict=True):
            if value is None:
                continue
            words = ["collectd"] + ([item["plugin"]] if item["plugin"] != item["type"] else []) + [item["type"]]
            words += [dsname] if dsname != "value" else []
            words += ["total"] if dstype in ("derive", "counter") else []
            labels = {"host": item["host"]}
            if item["plugin_instance"]:
                labels["instance"] = item["plugin_instance"]
            if item["type_instance"]:
                labels["type_instance"] = item["type_instance"]
            out.append((re.sub(r"[^a-zA-Z0-9_:]", "_", "_".join(words)), labels, round(item["time"] * 1e6), value))
    return out


def samples(result: ParseResult) -> list[tuple[str, dict[str, str], int, float]]:
    return [(k[0], dict(k[1]), t, v) for k, t, v in zip(result.keys, result.times_us, result.values, strict=True)]


@pytest.mark.parametrize(("fixture", "count"), [("collectd_json_01.body", 9), ("collectd_json_02.body", 44)])
def test_captured_collectd_bodies_give_the_documented_series(fixture: str, count: int) -> None:
    body = (FIXTURES / fixture).read_bytes()
    result = parse_collectd_json(body, opts())
    assert not result.errors
    assert len(result) == count
    assert samples(result) == expected_samples(body)


def test_captured_load_and_memory_values_spot_check() -> None:
    got = samples(parse_collectd_json((FIXTURES / "collectd_json_01.body").read_bytes(), opts()))
    assert ("collectd_load_shortterm", {"host": HOST}, 1795305228440000, 0.31103515625) in got
    assert ("collectd_load_longterm", {"host": HOST}, 1795305228440000, 0.33935546875) in got
    assert ("collectd_memory", {"host": HOST, "type_instance": "used"}, 1795305228440000, 784015360.0) in got


def test_captured_cpu_derive_counters_get_total_suffix_and_instance_labels() -> None:
    result = parse_collectd_json((FIXTURES / "collectd_json_02.body").read_bytes(), opts())
    got = samples(result)
    assert (
        "collectd_cpu_total",
        {"host": HOST, "instance": "0", "type_instance": "user"},
        1795305233425000,
        13319.0,
    ) in got
    assert (
        "collectd_cpu_total",
        {"host": HOST, "instance": "1", "type_instance": "idle"},
        1795305238426000,
        52509.0,
    ) in got
    assert {k[0] for k in result.keys} == {
        "collectd_cpu_total",
        "collectd_load_shortterm",
        "collectd_load_midterm",
        "collectd_load_longterm",
        "collectd_memory",
    }
    assert len(set(result.keys)) == 16 + 3 + 6


def item(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "values": [1.5],
        "dstypes": ["gauge"],
        "dsnames": ["value"],
        "time": NOW_US / 1e6,
        "interval": 10.0,
        "host": "h",
        "plugin": "df",
        "plugin_instance": "root",
        "type": "df_complex",
        "type_instance": "used",
    }
    base.update(overrides)
    return base


def test_plugin_is_kept_when_it_differs_from_type() -> None:
    result = parse([item()])
    assert samples(result) == [
        ("collectd_df_df_complex", {"host": "h", "instance": "root", "type_instance": "used"}, NOW_US, 1.5)
    ]


def test_counter_gets_total_and_absolute_does_not() -> None:
    result = parse([item(values=[1, 2], dstypes=["counter", "absolute"], dsnames=["rx", "tx"], type="if_octets")])
    assert [k[0] for k in result.keys] == ["collectd_df_if_octets_rx_total", "collectd_df_if_octets_tx"]


def test_null_values_are_skipped_and_counted() -> None:
    result = parse([item(values=[None, 3], dstypes=["derive", "derive"], dsnames=["rx", "tx"])])
    assert result.values == [3.0]
    assert result.skipped["null_values"] == 1
    assert not result.errors


def test_names_are_sanitized() -> None:
    result = parse([item(plugin="my.plugin", type="my-type", plugin_instance="", type_instance="")])
    assert result.keys == [("collectd_my_plugin_my_type", (("host", "h"),))]


@pytest.mark.parametrize(
    ("bad", "location", "reason"),
    [
        ("not an object", "item 1", "expected a JSON object"),
        (item(host=""), "item 1, field 'host'", "non-empty string"),
        (item(plugin=None), "item 1, field 'plugin'", "non-empty string"),
        (item(type_instance=5), "item 1, field 'type_instance'", "must be a string"),
        (item(values="1"), "item 1, field 'values'", "must be an array"),
        (item(dsnames=["a", "b"]), "item 1", "same length"),
        (item(time="now"), "item 1, field 'time'", "must be a number"),
        (item(time=1e15), "item 1, field 'time'", "not a valid epoch time"),
        (item(values=["1"]), "item 1 value 0", "must be a number or null"),
        (item(values=[True]), "item 1 value 0", "must be a number or null"),
        (item(dstypes=["weird"]), "item 1 value 0", "unknown dstype"),
        (item(dsnames=[""]), "item 1 value 0", "dsname"),
        (item(values=[10**400]), "item 1 value 0", "out of the range"),
        (item(host="x" * 201), "item 1", "host name is 201 characters long; the limit is 200"),
        (item(type_instance="x" * 2049), "item 1", "value is 2049 bytes long; the limit is 2048"),
        (item(time=NOW_US / 1e6 + 3600), "item 1 value 0", "in the future"),
    ],
)
def test_bad_value_lists_are_reported_and_good_ones_kept(bad: object, location: str, reason: str) -> None:
    result = parse([item(values=[7]), bad])
    assert result.values == [7.0]
    assert len(result.errors) == 1
    assert result.errors[0].location == location
    assert reason in result.errors[0].reason


def test_nan_values_follow_the_policy() -> None:
    body = (
        b'[{"values":[NaN],"dstypes":["gauge"],"dsnames":["value"],"time":1795305239,"host":"h",'
        b'"plugin":"p","type":"t"}]'
    )
    assert parse(body).skipped["non_finite"] == 1
    assert parse(body, nan_policy="reject").errors[0].location == "item 0 value 0"


@pytest.mark.parametrize("body", [b"{}", b'"x"', b"[1,", b"\xff\xfe", b"", b"[" * 100_000])
def test_unreadable_or_wrongly_shaped_bodies_raise_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_collectd_json(body, opts())


def test_max_samples_stops_parsing() -> None:
    result = parse([item(values=[1, 2, 3], dstypes=["gauge"] * 3, dsnames=["a", "b", "c"])], max_samples=2)
    assert result.values == [1.0, 2.0]
    assert result.errors[0].location == "item 0 value 2"
