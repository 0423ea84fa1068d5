"""InfluxDB line protocol parser: syntax, escapes, field types, precisions and partial writes."""

from __future__ import annotations

import pytest

from apps.metrics.ingest.influx import parse_line_protocol
from apps.metrics.ingest.types import ParseOptions, ParseResult
from tests.forked import finishes_in_a_child

NOW_US = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
NOW_NS = NOW_US * 1000

TSBS_LINE = (
    "cpu,hostname=host_0,region=eu-central-1,datacenter=eu-central-1a,rack=6,os=Ubuntu16.10,arch=x86,"
    "team=SF,service=19,service_version=1,service_environment=test usage_user=58i,usage_system=2i,"
    "usage_idle=24i,usage_nice=61i,usage_iowait=22i,usage_irq=63i,usage_softirq=6i,usage_steal=44i,"
    "usage_guest=80i,usage_guest_nice=38i 1451606400000000000"
)


def opts(**kwargs: object) -> ParseOptions:
    return ParseOptions(now_us=NOW_US, **kwargs)  # type: ignore[arg-type]


def parse(body: str | bytes, **kwargs: object) -> ParseResult:
    result = parse_line_protocol(body, opts(**kwargs))
    assert_runs_are_the_keys(result)
    return result


def assert_runs_are_the_keys(result: ParseResult) -> None:
    """The parser's per-line runs (what the ingest service maps series ids by) spell out the keys column."""
    assert result.runs is not None
    assert [key for run in result.runs for key in run] == result.keys
    assert all(run for run in result.runs)


def samples(result: ParseResult) -> list[tuple[str, dict[str, str], int, float]]:
    return [(k[0], dict(k[1]), t, v) for k, t, v in zip(result.keys, result.times_us, result.values, strict=True)]


def only_value(body: str, **kwargs: object) -> float:
    result = parse(body, **kwargs)
    assert not result.errors, result.errors
    assert len(result) == 1
    return result.values[0]


def test_tsbs_cpu_line_gives_ten_series_with_all_tags_as_labels() -> None:
    result = parse(TSBS_LINE, max_past_s=10**10)
    assert not result.errors
    assert len(result) == 10
    assert result.keys[0] == (
        "cpu_usage_user",
        (
            ("arch", "x86"),
            ("datacenter", "eu-central-1a"),
            ("hostname", "host_0"),
            ("os", "Ubuntu16.10"),
            ("rack", "6"),
            ("region", "eu-central-1"),
            ("service", "19"),
            ("service_environment", "test"),
            ("service_version", "1"),
            ("team", "SF"),
        ),
    )
    assert [k[0] for k in result.keys][-1] == "cpu_usage_guest_nice"
    assert result.values == [58.0, 2.0, 24.0, 61.0, 22.0, 63.0, 6.0, 44.0, 80.0, 38.0]
    assert result.times_us == [1451606400000000] * 10


def test_series_keys_are_reused_between_lines() -> None:
    result = parse(f"m,h=a v=1 {NOW_NS}\nm,h=a v=2 {NOW_NS + 1000}\n")
    assert result.keys[0] is result.keys[1]


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("1i", 1.0),
        ("-42i", -42.0),
        ("0i", 0.0),
        ("9223372036854775807i", 9223372036854775807.0),
        ("-9223372036854775808i", -9223372036854775808.0),
        ("7u", 7.0),
        ("18446744073709551615u", 18446744073709551615.0),
        ("1", 1.0),
        ("-1.5", -1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1.5E-3", 0.0015),
        ("-2e+2", -200.0),
        ("t", 1.0),
        ("T", 1.0),
        ("true", 1.0),
        ("True", 1.0),
        ("TRUE", 1.0),
        ("f", 0.0),
        ("F", 0.0),
        ("false", 0.0),
        ("False", 0.0),
        ("FALSE", 0.0),
    ],
)
def test_every_numeric_and_boolean_field_type_is_stored_as_float(literal: str, expected: float) -> None:
    assert only_value(f"m v={literal} {NOW_NS}") == expected


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ("9223372036854775808i", "out of range"),
        ("-9223372036854775809i", "out of range"),
        ("18446744073709551616u", "out of range"),
        ("-1u", "invalid unsigned integer"),
        ("1.5i", "invalid integer"),
        ("+1i", "invalid integer"),
        ("1_000i", "invalid integer"),
        ("1.2.3", "invalid number"),
        ("1_0", "invalid number"),
        ("0x10", "invalid number"),
        ("yes", "invalid boolean"),
        ("tRUE", "invalid boolean"),
        ("abc", "invalid boolean"),
    ],
)
def test_invalid_field_values_are_rejected_with_a_reason(literal: str, reason: str) -> None:
    result = parse(f"m v={literal} {NOW_NS}")
    assert len(result) == 0
    assert len(result.errors) == 1
    assert result.errors[0].location == "line 1"
    assert reason in result.errors[0].reason
    assert result.errors[0].reason.startswith(f"unable to parse 'm v={literal}")


def test_string_fields_are_skipped_and_counted_but_other_fields_kept() -> None:
    result = parse(f'm,h=a msg="hello, world = \\"x\\"",v=2i,other="" {NOW_NS}')
    assert not result.errors
    assert samples(result) == [("m_v", {"h": "a"}, NOW_US, 2.0)]
    assert result.skipped["string_fields"] == 2


def test_line_with_only_string_fields_is_valid_and_stores_nothing() -> None:
    result = parse(f'm status="ok" {NOW_NS}')
    assert not result.errors
    assert len(result) == 0
    assert result.skipped["string_fields"] == 1


@pytest.mark.parametrize(
    ("line", "name", "labels"),
    [
        # measurement: comma and space escaped; '=' needs no escape
        (r"my\,meas\ ure=x v=1", "my_meas_ure_x_v", {}),
        # tag keys and values: comma, equals and space escaped
        (r"m,tag\ key=a\ b,k\=2=v\=1,c\,d=x\,y v=1", "m_v", {"tag_key": "a b", "k_2": "v=1", "c_d": "x,y"}),
        # field key: comma, equals and space escaped
        (r"m f\ 1\,x\=y=1", "m_f_1_x_y", {}),
        # double backslash is one literal backslash; it does not escape the following separator
        (r"m,path=C:\\ v=1", "m_v", {"path": "C:\\"}),
        # a backslash before an ordinary character stays literal
        (r"m,path=C:\temp v=1", "m_v", {"path": "C:\\temp"}),
        # quotes inside tags are ordinary characters
        ('m,q="x" v=1', "m_v", {"q": '"x"'}),
    ],
)
def test_escapes_in_measurement_tags_and_field_keys(line: str, name: str, labels: dict[str, str]) -> None:
    result = parse(f"{line} {NOW_NS}")
    assert not result.errors, result.errors
    assert samples(result) == [(name, labels, NOW_US, 1.0)]


def test_escaped_quote_and_backslash_in_string_field_do_not_end_it() -> None:
    result = parse(f'm s="a\\"b\\\\",v=1 {NOW_NS}')
    assert not result.errors
    assert samples(result) == [("m_v", {}, NOW_US, 1.0)]
    assert result.skipped["string_fields"] == 1


def test_names_are_sanitized_to_prometheus_rules() -> None:
    result = parse(f"cpu.load-avg,Host-Name=web.1 1m=0.5 {NOW_NS}")
    assert samples(result) == [("cpu_load_avg_1m", {"Host_Name": "web.1"}, NOW_US, 0.5)]


def test_measurement_starting_with_a_digit_gets_an_underscore_prefix() -> None:
    assert parse(f"5xx v=1 {NOW_NS}").keys[0][0] == "_5xx_v"


@pytest.mark.parametrize(
    ("precision", "timestamp"),
    [("ns", NOW_NS + 1999), ("us", NOW_US + 1), ("ms", NOW_US // 1000), ("s", NOW_US // 1_000_000)],
)
def test_precision_scales_timestamps_to_microseconds(precision: str, timestamp: int) -> None:
    result = parse(f"m v=1 {timestamp}", precision=precision)
    expected = {"ns": NOW_US + 1, "us": NOW_US + 1, "ms": NOW_US, "s": NOW_US}[precision]
    assert result.times_us == [expected]


def test_missing_timestamp_means_now() -> None:
    result = parse("m v=1\nm v=2   \n")
    assert result.times_us == [NOW_US, NOW_US]


def test_comments_blank_lines_whitespace_and_crlf_are_accepted() -> None:
    body = f"# a comment\r\n\r\n   \n  m v=1 {NOW_NS}\r\n\t# indented comment\nm  v=2  {NOW_NS}  \r\n"
    result = parse(body)
    assert not result.errors
    assert result.values == [1.0, 2.0]


def test_bad_lines_are_listed_by_number_and_good_lines_kept() -> None:
    body = "\n".join(
        [
            f"m v=1 {NOW_NS}",
            "cpu",
            "cpu,host= v=1",
            "cpu,=x v=1",
            'm s="unterminated',
            "m v=1 12ab",
            f"m v=1 {NOW_NS} extra",
            "m v=1,",
            "m =1",
            "m v",
            "m v=",
            f"m v=3 {NOW_NS}",
        ]
    )
    result = parse(body)
    assert result.values == [1.0, 3.0]
    by_line = {e.location: e.reason for e in result.errors}
    assert list(by_line) == [f"line {n}" for n in range(2, 12)]
    assert by_line["line 2"] == "unable to parse 'cpu': missing fields"
    assert "missing tag value" in by_line["line 3"]
    assert "missing tag key" in by_line["line 4"]
    assert "unbalanced quotes" in by_line["line 5"]
    assert "bad timestamp" in by_line["line 6"]
    assert "invalid timestamp" in by_line["line 7"]
    assert "missing field key" in by_line["line 8"] or "invalid field format" in by_line["line 8"]
    assert "missing field key" in by_line["line 9"]
    assert "missing field value" in by_line["line 10"]
    assert "missing field value" in by_line["line 11"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m,__name__=x v=1", "reserved"),
        ("m,a=1,a=2 v=1", "duplicate label name 'a'"),
        ("m,a-b=1,a_b=2 v=1", "duplicate label name 'a_b'"),
        ("m,a=" + "\u00e9" * 1025 + " v=1", "value is 2050 bytes long; the limit is 2048"),
        ("m,a=b=c v=1", "invalid tag format"),
    ],
)
def test_invalid_tags_reject_the_line(line: str, reason: str) -> None:
    result = parse(f"{line} {NOW_NS}")
    assert len(result) == 0
    assert reason in result.errors[0].reason


@pytest.mark.parametrize("timestamp", ["10000000000000000000", "99999999999999999999", "9223372036854775808"])
def test_timestamps_beyond_int64_are_bad_timestamps_on_the_fast_path_too(timestamp: str) -> None:
    # 20 digits starting with 1-8 compare below int64's maximum as text; they are out of range all the same.
    result = parse(f"m v=1 {timestamp}")
    assert len(result) == 0
    assert result.errors[0].reason == f"unable to parse 'm v=1 {timestamp}': bad timestamp: out of range"


def test_a_first_line_ending_in_a_space_is_stamped_now_not_1970() -> None:
    # Its timestamp text is empty; the fast path once took it for "the previous line's timestamp" (time 0).
    result = parse(f"m v=1 \nm v=2 {NOW_NS}", max_past_s=10**12)
    assert not result.errors
    assert result.times_us == [NOW_US, NOW_US]


def test_zero_padded_timestamps_are_read_as_numbers() -> None:
    assert parse(f"m v=1 000{NOW_NS}").times_us == [NOW_US]


def test_timestamps_outside_the_window_are_rejected_naming_the_line() -> None:
    future = NOW_NS + 601 * 10**9
    past = NOW_NS - 7 * 86400 * 10**9 - 10**9
    result = parse(f"m v=1 {future}\nm v=2 {past}\nm v=3 {NOW_NS + 599 * 10**9}")
    assert result.values == [3.0]
    assert result.errors[0].location == "line 1"
    assert result.errors[0].reason == "timestamp 2023-11-14T22:23:21Z is more than 600 s in the future"
    assert result.errors[1].location == "line 2"
    assert result.errors[1].reason.endswith("is more than 604800 s in the past")


def test_window_check_also_applies_on_the_careful_path() -> None:
    result = parse(f'm s="x",v=1 {NOW_NS + 10**15}')
    assert "in the future" in result.errors[0].reason


@pytest.mark.parametrize("literal", ["NaN", "nan", "+Inf", "-Inf", "inf", "Infinity", "1e999"])
def test_non_finite_values_are_dropped_and_counted_by_default(literal: str) -> None:
    result = parse(f"m v={literal},w=1 {NOW_NS}")
    assert not result.errors
    assert samples(result) == [("m_w", {}, NOW_US, 1.0)]
    assert result.skipped["non_finite"] == 1


def test_non_finite_values_reject_the_line_when_the_policy_says_so() -> None:
    result = parse(f"m v=1 {NOW_NS}\nm v=NaN,w=1 {NOW_NS}", nan_policy="reject")
    assert result.values == [1.0]
    assert result.errors[0].location == "line 2"
    assert "not a finite number" in result.errors[0].reason


def test_max_samples_stops_parsing_and_keeps_whole_earlier_lines() -> None:
    body = "\n".join(f"m a={i},b={i} {NOW_NS}" for i in range(5))
    result = parse(body, max_samples=5)
    assert result.values == [0.0, 0.0, 1.0, 1.0]
    assert len(result.errors) == 1
    assert result.errors[0].location == "line 3"
    assert "limit is 5" in result.errors[0].reason


def test_max_samples_is_enforced_on_the_careful_path_too() -> None:
    body = "\n".join(f'm a={i},s="x" {NOW_NS}' for i in range(5))
    result = parse(body, max_samples=2)
    assert result.values == [0.0, 1.0]
    assert result.errors[0].location == "line 3"


def test_errors_beyond_max_errors_are_counted_not_listed() -> None:
    result = parse("bad\n" * 10, max_errors=3)
    assert len(result.errors) == 3
    assert result.skipped["unlisted_errors"] == 7


def test_invalid_utf8_rejects_only_its_line() -> None:
    body = f"m v=1 {NOW_NS}\n".encode() + b"m,h=\xff v=2\n" + f"m v=3 {NOW_NS}".encode()
    result = parse(body)
    assert result.values == [1.0, 3.0]
    assert result.errors[0].location == "line 2"
    assert result.errors[0].reason == "invalid UTF-8"


def test_utf8_tag_values_are_kept_and_utf8_names_sanitized() -> None:
    result = parse(f"température,ville=Zürich wert=1 {NOW_NS}".encode())
    assert samples(result) == [("temp_rature_wert", {"ville": "Zürich"}, NOW_US, 1.0)]


def test_long_lines_are_shortened_in_error_messages() -> None:
    result = parse("m," + "a" * 500)
    assert len(result.errors[0].reason) < 200


@pytest.mark.parametrize(
    "line",
    [
        TSBS_LINE.replace(" 1451606400000000000", f" {NOW_NS}"),
        f"m,a=b x=1.5,y=-2i,z=3u,w=true {NOW_NS}",
        f"weather,location=us-midwest temperature=82 {NOW_NS}",
        "m v=1e3",
    ],
)
def test_fast_and_careful_paths_agree(line: str) -> None:
    fast = parse(line)
    # Trailing whitespace is legal but not on the fast path, so this exercises the careful scanner.
    careful = parse(line + " \t")
    assert not fast.errors and not careful.errors
    assert samples(fast) == samples(careful)


def test_str_and_bytes_bodies_parse_the_same() -> None:
    body = f"m,h=ä v=1 {NOW_NS}"
    assert samples(parse(body)) == samples(parse(body.encode()))


@pytest.mark.parametrize(
    "line",
    [
        "m,host=a x=1i,y=-2i,z=3u,w=1.5e3,v=-.5,u=7.",  # mixed numbers: the bulk path
        "m,host=a x=1i,foo,7=b=2i",  # a field without "=" and one with two: invalid, never realigned
        "m,host=a x=1e308,y=1e308",  # each finite, the sum overflows: per-field path, both kept
        "m,host=a x=1e400",  # overflow: NaN policy
        "m,host=a x=1234567890123456789i",  # 19 digits: out of the fast range, careful path decides
        "m,host=a x=1i,x=2i",  # duplicate field key
        "m,host=a x=1i,y=t",  # a boolean: per-field path
        "m,host=a 1x=1i,__y=2i",  # names that need sanitizing or are refused
    ],
)
def test_bulk_numeric_path_agrees_with_the_careful_scanner(line: str) -> None:
    from apps.metrics.ingest import influx

    options = opts()
    fast = parse_line_protocol(line, options)
    careful = ParseResult()
    try:
        influx._parse_line_slow(line, careful, options, 1, 1)
    except influx._LineError:
        assert fast.errors and len(fast) == 0, (line, fast)
        return
    assert not fast.errors, (line, fast.errors)
    assert (fast.keys, fast.times_us, fast.values) == (careful.keys, careful.times_us, careful.values)
    assert fast.skipped == careful.skipped
    assert len(fast) > 0 or "1e400" in line


def _refuse_the_hostile_body(lines: int) -> None:
    line = "m " + ",".join(f"f{i}=1234567890" for i in range(40)) + ",z=x"
    result = parse("\n".join([line] * lines))
    assert len(result.errors) == lines and not result.values
    assert result.errors[0].reason.endswith("invalid boolean 'x'")


@pytest.mark.parametrize("lines", [1, 20], ids=["per-line reader", "bulk reader"])
def test_values_that_fail_at_the_end_of_a_long_field_set_are_refused_at_once(lines: int) -> None:
    """A number can be matched in more than one way ("1234" as "12" and "34"); a field set that failed only
    at its end used to be retried every way, and 8 ten-digit values took 38 s (a hostile body stopped a
    worker). Now each value matches one way; this body's 40 values would never finish."""
    finishes_in_a_child(_refuse_the_hostile_body, lines)
