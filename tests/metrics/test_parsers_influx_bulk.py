"""The bulk reader of plain line protocol (influx_bulk) gives exactly what the per-line reader gives: the
same keys, times, values (bit for bit), runs, errors and skipped counts, on any mixture of good and bad
lines, with the bulk blocks cut anywhere."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.metrics.ingest import influx, influx_bulk
from apps.metrics.ingest.types import ParseOptions, ParseResult

NOW_US = 1_795_305_600_000_000
# A few seconds of CPU by default; set FIBERSTACK_FUZZ_EXAMPLES=5000 for a deep run.
FUZZ = settings(
    max_examples=int(os.environ.get("FIBERSTACK_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TSBS_PREFIX = (
    "cpu,hostname=host_{},region=eu-central-1,datacenter=eu-central-1a,rack=6,os=Ubuntu16.10,arch=x86,"
    "team=SF,service=19,service_version=1,service_environment=test"
)
TSBS_FIELDS = [
    "usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq", "usage_softirq",
    "usage_steal", "usage_guest", "usage_guest_nice",
]  # fmt: skip
GOOD_PREFIXES = [
    *(TSBS_PREFIX.format(h) for h in range(3)),
    "cpu,cpu=cpu-total,host=web-001",
    "mem,host=web-001",
    "disk,device=sda1,host=web-001,path=/",
    "m",
    "température,ville=Zürich",
]
BAD_PREFIXES = [
    "cpu,host=",
    "cpu,=x",
    "m,__name__=x",
    "m,a=1,a=2",
    "m,a=b=c",
    "#m",
    "m,h=a\\ b",
    "m,h=\x01",
    "1m,h=a",
]
GOOD_NAMES = [*TSBS_FIELDS[:4], "load1", "x", "p99", "p50", "a1", "1x", "pi", "ui"]
BAD_NAMES = ["", "__y", "é", "a\\,b", "#"]
GOOD_VALUES = ["58i", "0i", "-5i", "-0i", "123456789012345678i", "-12345678901234567i", "1.5", "-0.25", "1e3",
               "1E-3", "+1", ".5", "5.", "7", "-0", "-0.0", "45.1234", "12u", "0u", "1e308", "007",
               "1234567890123456789012"]  # fmt: skip
# Bodies of integers only take numpy's integer reader (influx_bulk._integers): rounding above 2**53 included.
INTEGER_VALUES = ["58i", "0i", "-5i", "-0i", "007i", "123456789012345678i", "-12345678901234567i",
                  "999999999999999999i", "9007199254740993i", "-9007199254740993i", "36028797018963971i"]  # fmt: skip
ODD_VALUES = ["t", "FALSE", '"s"', '"a b,c=d"', "1.5i", "1_0", "inf", "-inf", "nan", "NaN", "Infinity", "1e400",
              "-1e400", "1234567890123456789i", "9223372036854775807i", "9223372036854775808i",
              "-000000000000000000i", "0000000000000000001i", "18446744073709551615u", "18446744073709551616u",
              "-5u", "", "1e", "--1", "5-", "i", "5ii", "0x10", "\u0661", "1.5u", "1=2"]  # fmt: skip
SPECIAL_LINES = ["", "# a comment", "  # indented comment", "   ", "\r", "m", "m ", "m v=1 1 2", "m  v=1", " m v=1",
                 "\tm v=1", "m v=1\t", "m\tv=1", "m v=1 ", "=", "m,", "m v=1,", "m v=1,,w=2", "\xff",
                 "m,h=\udcff v=1", "\udcff"]  # fmt: skip


def times_for(precision: str) -> list[str | None]:
    """Timestamp texts: in the window, outside it, malformed, missing, in ``precision`` units."""
    per_us = {"ns": 1000, "us": 1, "ms": 1, "s": 1}[precision]
    div = {"ns": 1, "us": 1, "ms": 1000, "s": 1_000_000}[precision]
    now = NOW_US * per_us // div
    step = 10_000_000 * per_us // div
    return [
        str(now), str(now - step), str(now - 2 * step), str(now + 10**6 * step), str(now - 10**6 * step),
        None, "10000000000000000000", "99999999999999999999", "9223372036854775807", "000" + str(now),
        "-5", "12ab", "1.5", "0",
    ]  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn, good_values: list[str] = GOOD_VALUES) -> tuple[bytes | str, ParseOptions, tuple[int, int]]:
    precision = draw(st.sampled_from(["ns", "ns", "us", "ms", "s"]))
    times = times_for(precision)
    # A few series (prefix + field names) that most lines repeat, as an agent's scrape does.
    templates = draw(
        st.lists(
            st.tuples(
                st.sampled_from(GOOD_PREFIXES),
                st.one_of(st.just(TSBS_FIELDS), st.lists(st.sampled_from(GOOD_NAMES), min_size=1, max_size=4)),
            ),
            min_size=1,
            max_size=4,
        )
    )
    line_count = draw(st.integers(0, 70))
    lines = []
    time_index = 0
    for _ in range(line_count):
        kind = draw(st.sampled_from(["good"] * 12 + ["odd value", "odd prefix", "odd name", "odd time", "special"]))
        if kind == "special":
            lines.append(draw(st.sampled_from(SPECIAL_LINES)))
            continue
        prefix, names = draw(st.sampled_from(templates))
        if kind == "odd prefix":
            prefix = draw(st.sampled_from(BAD_PREFIXES))
        if kind == "odd name":
            names = [*names[:-1], draw(st.sampled_from(BAD_NAMES + GOOD_NAMES))]
        values = [draw(st.sampled_from(good_values)) for _ in names]
        if kind == "odd value":
            values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(ODD_VALUES))
        # Mostly time-major runs of one timestamp, like a scrape; sometimes anything.
        if draw(st.integers(0, 9)) == 0:
            time_index = draw(st.integers(0, 2))
        ts = draw(st.sampled_from(times)) if kind == "odd time" else times[time_index]
        line = f"{prefix} {','.join(f'{n}={v}' for n, v in zip(names, values, strict=True))}"
        lines.append(line if ts is None else f"{line} {ts}")
    body = draw(st.sampled_from(["\n", "\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))
    options = ParseOptions(
        now_us=NOW_US,
        precision=precision,  # type: ignore[arg-type]
        max_samples=draw(st.sampled_from([1_000_000, 1_000_000, 1, 7, 40, 150])),
        max_errors=draw(st.sampled_from([1000, 2])),
        nan_policy=draw(st.sampled_from(["drop", "reject"])),
    )
    blocks = draw(st.sampled_from([(512, 64), (8, 2), (16, 4), (9, 3), (30, 8)]))
    encoded = draw(st.sampled_from(["str", "bytes", "bytes"]))
    return (body.encode("utf-8", "surrogateescape") if encoded == "bytes" else body), options, blocks


def snapshot(result: ParseResult) -> dict[str, Any]:
    """Everything a result says; values as hex so that 0.0 and -0.0 differ."""
    return {
        "keys": result.keys,
        "times_us": result.times_us,
        "values": [value.hex() for value in result.values],
        "runs": result.runs,
        "errors": [(error.location, error.reason) for error in result.errors],
        "skipped": dict(result.skipped),
    }


@FUZZ
@given(bodies())
def test_bulk_reading_gives_what_the_per_line_reader_gives(
    case: tuple[bytes | str, ParseOptions, tuple[int, int]],
) -> None:
    body, options, blocks = case
    bulk = influx._parse(body, options, blocks=blocks)
    reference = influx._parse(body, options, bulk=False)
    assert snapshot(bulk) == snapshot(reference), body
    assert bulk.runs is not None
    assert [key for run in bulk.runs for key in run] == bulk.keys
    assert all(bulk.runs)


@FUZZ
@given(bodies(good_values=INTEGER_VALUES))
def test_bodies_of_integers_read_in_bulk_give_what_the_per_line_reader_gives(
    case: tuple[bytes | str, ParseOptions, tuple[int, int]],
) -> None:
    body, options, blocks = case
    assert snapshot(influx._parse(body, options, blocks=blocks)) == snapshot(influx._parse(body, options, bulk=False))


def test_integer_values_are_read_by_numpy_rounded_as_float_of_int() -> None:
    texts = ["9007199254740993i", "-0i", "007i", "999999999999999999i", "-12345678901234567i"]
    assert influx_bulk._values(texts) == [float(int(text[:-1])) for text in texts]
    assert [value.hex() for value in influx_bulk._values(texts)][:2] == [float(2**53).hex(), "0x0.0p+0"]
    assert influx_bulk._values(["1i", "1234567890123456789i"]) is None  # 19 digits: the per-line reader's


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize(
    "line",
    ["m v=-0i,w=-0.0,x=-00i", "m v=-0i,w=-0.0,x=-00i,y=t", "m,h=a\\ b v=-0i,w=-0.0,x=-00i"],
    ids=["plain", "medium path", "careful scanner"],
)
def test_the_integer_minus_zero_is_zero_and_the_float_keeps_its_sign(line: str, bulk: bool) -> None:
    result = influx._parse(line, ParseOptions(now_us=NOW_US), bulk=bulk)
    values = {key[0]: value.hex() for key, value in zip(result.keys, result.values, strict=True)}
    assert (values["m_v"], values["m_w"], values["m_x"]) == ("0x0.0p+0", "-0x0.0p+0", "0x0.0p+0")


def tsbs_body(lines: int, hosts: int = 7) -> list[str]:
    return [
        f"{TSBS_PREFIX.format(n % hosts)} "
        + ",".join(f"{name}={(n * 7 + i) % 100}i" for i, name in enumerate(TSBS_FIELDS))
        + f" {(NOW_US - (lines - n // hosts) * 10_000_000) * 1000}"
        for n in range(lines)
    ]


@pytest.fixture
def per_line(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (start, stop) line ranges handed to the per-line reader, in order."""
    ranges: list[tuple[int, int]] = []
    read_lines = influx._read_lines
    monkeypatch.setattr(
        influx,
        "_read_lines",
        lambda lines, start, stop, *args: ranges.append((start, stop)) or read_lines(lines, start, stop, *args),
    )
    return ranges


def test_a_plain_body_is_read_in_bulk_with_one_cached_key_tuple_per_series(per_line: list[tuple[int, int]]) -> None:
    body = "\n".join(tsbs_body(1200)) + "\n"
    result = influx.parse_line_protocol(body, ParseOptions(now_us=NOW_US))
    assert per_line == []
    assert len(result) == 12_000 and not result.errors
    assert result.runs is not None and result.runs[0] is result.runs[7] is result.runs[1197]


def test_a_bad_line_costs_only_its_small_block_and_keeps_its_number(per_line: list[tuple[int, int]]) -> None:
    lines = tsbs_body(1200)
    lines[700] = lines[700].replace("usage_idle=", "usage_idle=1.5i,x=")
    result = influx.parse_line_protocol("\n".join(lines), ParseOptions(now_us=NOW_US))
    assert per_line == [(640, 704)]
    assert [e.location for e in result.errors] == ["line 701"]
    assert result.errors[0].reason.endswith(": invalid integer '1.5i'")
    assert len(result) == 11_990


def test_max_samples_inside_a_bulk_block_stops_at_the_same_line_as_line_by_line() -> None:
    body = "\r\n".join(tsbs_body(300))
    options = ParseOptions(now_us=NOW_US, max_samples=1234)
    assert snapshot(influx.parse_line_protocol(body, options)) == snapshot(influx._parse(body, options, bulk=False))
    result = influx.parse_line_protocol(body, options)
    assert len(result) == 1230
    assert result.errors[0].location == "line 124"
    assert result.skipped["unread_lines"] == 176
