"""Properties of the line-protocol parser that HTTP cannot observe: the fast path agrees with the careful
scanner, and generated line protocol round-trips through escaping and every value type.

Hostile input (nothing raises, nothing unstorable is stored, replies are honest) is tested end to end,
door by door, in test_ingest_hostile.py."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apps.metrics.ingest import influx
from apps.metrics.ingest.influx import parse_line_protocol
from apps.metrics.ingest.naming import NamingError, make_labels, sanitize_metric_name
from apps.metrics.ingest.types import DEFAULT_LIMITS, ParseOptions, ParseResult

NOW_US = 1_795_305_600_000_000
NOW_NS = NOW_US * 1000
# A few seconds of CPU by default; set FIBERSTACK_FUZZ_EXAMPLES=5000 for a deep run.
FUZZ = settings(
    max_examples=int(os.environ.get("FIBERSTACK_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def opts(**kwargs: object) -> ParseOptions:
    return ParseOptions(now_us=NOW_US, **kwargs)  # type: ignore[arg-type]


# ---- line protocol ---------------------------------------------------------------------------------------

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
    assert fast.runs == ([tuple(fast.keys)] if fast.keys else []), line
    assert fast.skipped == careful.skipped


# Storable names only (control characters and lone surrogates are refused; see test_ingest_hostile.py).
NAME_CHARS = st.characters(blacklist_categories=("Cs", "Cc"))


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
