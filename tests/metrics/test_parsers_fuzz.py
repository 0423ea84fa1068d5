"""Property tests: no parser raises anything but PayloadError, every result keeps the contract's invariants,
and generated line protocol round-trips through escaping and every value type."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable

import cramjam
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apps.metrics.ingest import influx
from apps.metrics.ingest.collectd import parse_collectd_json
from apps.metrics.ingest.influx import parse_line_protocol
from apps.metrics.ingest.naming import (
    NamingError,
    is_valid_label_name,
    is_valid_metric_name,
    make_labels,
    sanitize_metric_name,
)
from apps.metrics.ingest.native_json import parse_agent_payload, parse_metrics_json, parse_probe_payload
from apps.metrics.ingest.prometheus import Label, Sample, WriteRequest, parse_remote_write
from apps.metrics.ingest.types import DEFAULT_LIMITS, ParseOptions, ParseResult, PayloadError
from apps.metrics.ingest.validation import series_problem

NOW_US = 1_795_305_600_000_000
NOW_NS = NOW_US * 1000
# ~10 s of CPU for the whole file by default; set FIBERSTACK_FUZZ_EXAMPLES=5000 for a deep run.
FUZZ = settings(
    max_examples=int(os.environ.get("FIBERSTACK_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

LINE_LOCATION = re.compile(r"line [1-9][0-9]*")
JSON_LOCATION = re.compile(r"(item [0-9]+(, field '.*'| value [0-9]+)?|field '.*')", re.DOTALL)
PROM_LOCATION = re.compile(r"(timeseries|metadata) [0-9]+")


def opts(**kwargs: object) -> ParseOptions:
    return ParseOptions(now_us=NOW_US, **kwargs)  # type: ignore[arg-type]


def check_contract(result: ParseResult, options: ParseOptions, location: re.Pattern[str]) -> None:
    """Invariants every ParseResult must keep, whatever the input was."""
    assert len(result.keys) == len(result.times_us) == len(result.values) == len(result)
    assert len(result) <= options.max_samples
    for (name, labels), t_us, value in zip(result.keys, result.times_us, result.values, strict=True):
        assert is_valid_metric_name(name), name
        assert list(labels) == sorted(labels)
        assert len({k for k, _ in labels}) == len(labels)
        for label_name, label_value in labels:
            assert is_valid_label_name(label_name), label_name
            assert isinstance(label_value, str) and label_value
        assert series_problem((name, labels), options.limits) is None, (name, labels)
        assert type(t_us) is int and options.min_time_us <= t_us <= options.max_time_us
        assert type(value) is float and math.isfinite(value)
    for error in result.errors:
        assert location.fullmatch(error.location), error.location
        assert error.reason.strip()
        assert error.as_dict() == {"location": error.location, "reason": error.reason}


def run(parse: Callable[[], ParseResult], options: ParseOptions, location: re.Pattern[str]) -> None:
    try:
        result = parse()
    except PayloadError as exc:
        assert exc.reason.strip() and exc.location
        return
    check_contract(result, options, location)


# ---- line protocol ---------------------------------------------------------------------------------------

LP_ALPHABET = st.sampled_from(list('abcxyz_=, "\\\n\r\t#0123456789.-+eEiutfTFNa\xe9\u4e2d'))


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(LP_ALPHABET, max_size=300).map(str.encode)))
def test_line_protocol_never_raises_and_keeps_the_contract(body: bytes) -> None:
    options = opts(max_samples=20, max_errors=50)
    run(lambda: parse_line_protocol(body, options), options, LINE_LOCATION)


@FUZZ
@given(st.lists(st.text(LP_ALPHABET, max_size=60), max_size=8), st.sampled_from(["drop", "reject"]))
def test_line_protocol_mutated_valid_lines_never_raise(noise: list[str], policy: str) -> None:
    lines = [f"m,h=a{n} v={n}i,w=1.5 {NOW_NS}{n}" for n in noise]
    options = opts(nan_policy=policy, precision="us", max_past_s=10**12, max_future_s=10**12)
    run(lambda: parse_line_protocol("\n".join(lines), options), options, LINE_LOCATION)


FAST_PATH_SHAPED = (
    st.lists(
        st.sampled_from(
            [
                "m",
                "cpu",
                ",",
                "h=a",
                "=",
                " ",
                "v",
                "1",
                "-",
                ".",
                "e",
                "i",
                "u",
                "t",
                "F",
                "_",
                "9",
                "\xe9",
                "+",
                "NaN",
                "18446744073709551616",
                "9223372036854775808",
                "1795305600000000000",
            ]
        ),
        min_size=1,
        max_size=20,
    )
    .map("".join)
    .filter(lambda line: line[0] not in " #")
)


@FUZZ
@given(FAST_PATH_SHAPED)
def test_fast_path_agrees_with_the_careful_scanner(line: str) -> None:
    options = opts(precision="us", max_past_s=10**12, max_future_s=10**12)
    fast = parse_line_protocol(line, options)
    careful = ParseResult()
    try:
        influx._parse_line_slow(line, careful, options, 1, 1)
    except influx._LineError:
        assert fast.errors and len(fast) == 0, (line, fast)
        return
    assert not fast.errors, (line, fast.errors)
    assert (fast.keys, fast.times_us, fast.values) == (careful.keys, careful.times_us, careful.values), line
    assert fast.skipped == careful.skipped


NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")


def escape(text: str, specials: str) -> str:
    out = text.replace("\\", "\\\\")
    for char in specials:
        out = out.replace(char, "\\" + char)
    return out


FIELD_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(lambda i: (f"{i}i", float(i))),
    st.integers(0, 2**64 - 1).map(lambda i: (f"{i}u", float(i))),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: (repr(f), f)),
    st.sampled_from(["t", "T", "true", "True", "TRUE"]).map(lambda b: (b, 1.0)),
    st.sampled_from(["f", "F", "false", "False", "FALSE"]).map(lambda b: (b, 0.0)),
)


@FUZZ
@given(
    measurement=st.text(NAME_CHARS, min_size=1, max_size=12).filter(lambda m: m[0] not in "#\t"),
    tags=st.dictionaries(
        st.text(NAME_CHARS, min_size=1, max_size=8), st.text(NAME_CHARS, min_size=1, max_size=8), max_size=4
    ),
    # A tab before the first field key is whitespace between sections (as in InfluxDB), not part of the key.
    fields=st.dictionaries(st.text(NAME_CHARS, min_size=1, max_size=8), FIELD_VALUES, min_size=1, max_size=5).filter(
        lambda f: not next(iter(f)).startswith("\t")
    ),
    strings=st.dictionaries(st.text(NAME_CHARS, min_size=1, max_size=8), st.text(NAME_CHARS, max_size=10), max_size=2),
    offset_ns=st.integers(-(7 * 86400 - 1) * 10**9, 600 * 10**9),
    with_timestamp=st.booleans(),
)
def test_generated_line_protocol_round_trips(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, tuple[str, float]],
    strings: dict[str, str],
    offset_ns: int,
    with_timestamp: bool,
) -> None:
    try:
        labels = make_labels(tags.items(), DEFAULT_LIMITS)
        names = {key: sanitize_metric_name(f"{measurement}_{key}") for key in fields}
    except NamingError:
        assume(False)
    tag_text = "".join(f",{escape(k, ',= ')}={escape(v, ',= ')}" for k, v in tags.items())
    field_parts = [f"{escape(k, ',= ')}={literal}" for k, (literal, _) in fields.items()]
    field_parts += [f'{escape(k, ",= ")}="{escape(v, chr(34))}"' for k, v in strings.items()]
    line = f"{escape(measurement, ', ')}{tag_text} {','.join(field_parts)}"
    if with_timestamp:
        line += f" {NOW_NS + offset_ns}"

    result = parse_line_protocol(line.encode(), opts())

    assert not result.errors, (line, result.errors)
    assert result.keys == [(names[key], labels) for key in fields]
    assert result.values == [value for _, value in fields.values()]
    expected_t = (NOW_NS + offset_ns) // 1000 if with_timestamp else NOW_US
    assert result.times_us == [expected_t] * len(fields)
    assert result.skipped["string_fields"] == len(strings)


# ---- JSON formats ----------------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


def shaped(keys: list[str]) -> st.SearchStrategy[dict[str, object]]:
    """Objects using the format's own keys with arbitrary values: reaches deeper than random JSON."""
    plausible = st.one_of(
        ANY_JSON,
        st.just(NOW_US / 1e6),
        st.just("2026-11-22T00:00:00Z"),
        st.just("9f0c5d2a-1111-4222-8333-444455556666"),
        st.just("DE"),
        st.just(["gauge"]),
    )
    return st.dictionaries(st.sampled_from(keys), plausible, max_size=len(keys))


METRIC_KEYS = ["name", "value", "time", "labels", "host", "unit"]
PROBE_KEYS = ["node_id", "country", "region", "timestamp", "latency_ms", "uptime_pct", "packet_loss", "metadata"]
COLLECTD_KEYS = [
    "values",
    "dstypes",
    "dsnames",
    "time",
    "interval",
    "host",
    "plugin",
    "plugin_instance",
    "type",
    "type_instance",
]


def json_bodies(keys: list[str]) -> st.SearchStrategy[bytes]:
    docs = st.one_of(
        ANY_JSON,
        shaped(keys),
        st.lists(shaped(keys), max_size=5),
        st.builds(lambda items: {"metrics": items}, st.lists(shaped(keys), max_size=3)),
    )
    return st.one_of(st.binary(max_size=100), docs.map(lambda doc: json.dumps(doc).encode()))


@FUZZ
@given(json_bodies(METRIC_KEYS), st.sampled_from(["drop", "reject"]))
def test_metrics_json_never_raises_and_keeps_the_contract(body: bytes, policy: str) -> None:
    options = opts(nan_policy=policy, max_samples=3)
    run(lambda: parse_metrics_json(body, options), options, JSON_LOCATION)


@FUZZ
@given(json_bodies(PROBE_KEYS), st.sampled_from(["drop", "reject"]))
def test_probe_payload_never_raises_and_keeps_the_contract(body: bytes, policy: str) -> None:
    options = opts(nan_policy=policy)
    run(lambda: parse_probe_payload(body, options), options, JSON_LOCATION)


@FUZZ
@given(json_bodies(["timestamp", "time", "labels", "cpu", "mem"]), st.text(max_size=10))
def test_agent_payload_never_raises_and_keeps_the_contract(body: bytes, host: str) -> None:
    options = opts(max_samples=10)
    run(lambda: parse_agent_payload(host, body, options), options, JSON_LOCATION)


@FUZZ
@given(json_bodies(COLLECTD_KEYS))
def test_collectd_never_raises_and_keeps_the_contract(body: bytes) -> None:
    options = opts(max_samples=5)
    run(lambda: parse_collectd_json(body, options), options, JSON_LOCATION)


# ---- remote_write ----------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_fields(fields: list[tuple[int, int, object]]) -> bytes:
    out = bytearray()
    for number, wire_type, payload in fields:
        out += varint(number << 3 | wire_type)
        if wire_type == 0:
            out += varint(payload)  # type: ignore[arg-type]
        elif wire_type == 2:
            out += varint(len(payload)) + payload  # type: ignore[arg-type]
        else:
            out += payload  # type: ignore[operator]
    return bytes(out)


def protobuf_messages(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    number = st.integers(1, 6)
    field = st.one_of(
        st.tuples(number, st.just(0), st.integers(0, 2**64 - 1)),
        st.tuples(number, st.just(1), st.binary(min_size=8, max_size=8)),
        st.tuples(number, st.just(5), st.binary(min_size=4, max_size=4)),
        st.tuples(number, st.just(2), children),
    )
    return st.lists(field, max_size=6).map(encode_fields)


# Structurally valid protobuf with random field numbers and wire types, nested a few levels deep.
PROTOBUF_ISH = st.recursive(st.binary(max_size=12), protobuf_messages, max_leaves=30)


@FUZZ
@given(st.one_of(PROTOBUF_ISH, st.binary(max_size=200)), st.sampled_from(["snappy", "identity", "raw-snappy"]))
def test_remote_write_never_raises_on_protobuf_ish_bytes(body: bytes, mode: str) -> None:
    options = opts(max_samples=10)
    if mode == "snappy":
        body = bytes(cramjam.snappy.compress_raw(body))
    encoding = "identity" if mode == "identity" else "snappy"
    run(lambda: parse_remote_write(body, options, content_encoding=encoding), options, PROM_LOCATION)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.dictionaries(
                st.sampled_from(["__name__", "job", "a-b", "__x", "le", ""]), st.text(max_size=6), max_size=4
            ),
            st.lists(st.tuples(st.floats(), st.integers(-(2**63), 2**63 - 1)), max_size=3),
        ),
        max_size=6,
    ),
    st.sampled_from(["drop", "reject"]),
)
def test_remote_write_with_random_series_keeps_the_contract(
    series: list[tuple[dict[str, str], list[tuple[float, int]]]], policy: str
) -> None:
    request = WriteRequest()
    for labels, points in series:
        ts = request.timeseries.add()
        ts.labels.extend(Label(name=k, value=v).SerializeToString() for k, v in labels.items())
        ts.samples.extend(Sample(value=v, timestamp=t) for v, t in points)
    options = opts(nan_policy=policy, max_past_s=10**12, max_future_s=10**12)
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    run(lambda: parse_remote_write(body, options), options, PROM_LOCATION)
