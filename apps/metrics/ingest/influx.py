"""InfluxDB line protocol -> FiberStack samples.

Syntax (https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/)::

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

Mapping onto the Prometheus model (see ``naming`` for the sanitizing rules):

* each field becomes one series named ``<measurement>_<field key>`` (sanitized), e.g.
  ``cpu usage_idle=1`` -> ``cpu_usage_idle``; tags become labels (sanitized names, ``__`` refused);
* integers (``12i``), unsigned integers (``12u``) and floats are stored as float; booleans
  (``t T true True TRUE`` / ``f F false False FALSE``) as 1.0 / 0.0; string fields have no numeric
  value and are skipped, counted in ``skipped['string_fields']``;
* the timestamp is an integer in ``options.precision`` units (ns by default, like InfluxDB); a line
  without one gets ``options.now_us``;
* escapes: ``\\,`` ``\\ `` in measurements; ``\\,`` ``\\=`` ``\\ `` in tag keys, tag values and field keys;
  ``\\"`` in string field values; ``\\\\`` is a literal backslash everywhere; any other backslash is
  literal. Comments (``#``), blank lines, leading/trailing whitespace and CRLF line ends are accepted.
  ``NaN``/``Inf`` literals and overflowing floats follow ``options.nan_policy``.

Errors are per line (``line N``, 1-based) with InfluxDB's wording, ``unable to parse '<line>': <why>``
(control characters in the excerpt written as escapes); the other lines are still stored (partial
write). Every series passes ``validation`` (control characters, sizes, host) when its prefix or field
is first seen; the verdict is cached with the prefix.

Speed: the ingest target is >= 300k values/s end to end on 2 cores, so plain bodies are not read line by
line. ``influx_bulk`` reads blocks of 512 lines (no backslash, quote, tab or comment line; fields of plain
numbers) as columns: one ``bytes.translate`` and one regex check the shape of every line, a few splits cut
the block into prefixes, field names, values and timestamps, one regex (or ``float`` itself, for floats)
checks all the values and one ``map(float, ...)`` (numpy, for integers) converts them; prefixes, field-name layouts and
timestamps are looked up per line in caches. A block is read in bulk only when every line is certain to
give what the per-line reader gives; otherwise it is retried in blocks of 64 lines, and a small block that
still fails is read line by line. The per-line reader (``_read_lines``) has a fast path for the usual line
(``str.split`` tokenizing, the ``measurement,tags`` prefix looked up in a bounded cache that maps the raw
prefix text to its measurement, sorted labels and per-field series keys, one regex over the field set)
and the careful char-by-char scanner for the rest, which is the authority on what is valid and words every
error. Both paths append the same cached key tuple for every line of one prefix and field-name set to
``runs``. ``_parse(..., bulk=False)`` is the per-line reader alone: the reference the bulk reader is
tested against (tests/metrics/test_parsers_influx_bulk.py).
"""

from __future__ import annotations

import re
from itertools import islice
from typing import NamedTuple

from apps.metrics.ingest.influx_bulk import NUMBER, BulkReader, without_integer_minus_zero
from apps.metrics.ingest.naming import NamingError, intern_key, make_labels, make_metric_name
from apps.metrics.ingest.types import (
    TOO_MANY_SAMPLES,
    ParseOptions,
    ParseResult,
    SeriesKey,
    SeriesLimits,
    add_error,
)
from apps.metrics.ingest.validation import forbidden_char, printable, register_cache, use_limits

__all__ = ["parse_line_protocol"]

_BOOLS: dict[str, float] = {
    "t": 1.0, "T": 1.0, "true": 1.0, "True": 1.0, "TRUE": 1.0,
    "f": 0.0, "F": 0.0, "false": 0.0, "False": 0.0, "FALSE": 0.0,
}  # fmt: skip
# (multiply, floor-divide) that turns a timestamp in the given precision into microseconds.
_PRECISION: dict[str, tuple[int, int]] = {"ns": (1, 1000), "us": (1, 1), "ms": (1000, 1), "s": (1_000_000, 1)}
_FLOAT_START = frozenset("0123456789-.")
_FLOAT_END = frozenset("0123456789.")
_FLOAT_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_NON_FINITE_RE = re.compile(r"[-+]?(?:nan|inf|infinity)", re.IGNORECASE)
_INT_RE = re.compile(r"-?[0-9]+")
_UINT_RE = re.compile(r"[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT64_MAX_TEXT = str(_INT64_MAX)
_UINT64_MAX = 2**64 - 1

# Characters a backslash escapes in each element; any other backslash is kept literally.
_MEASUREMENT_ESC = frozenset(", \\")
_KEY_ESC = frozenset(",= \\")
_STRING_ESC = frozenset('"\\')

# A TSBS-shaped prefix with its ten field keys costs ~3.4 KB (bench/parsers.py), so this bounds the cache
# near 55 MB per process while still covering ~16k distinct host/tag sets without a re-parse.
_PREFIX_CACHE_MAX = 16_384
_FIELDS_PER_PREFIX_MAX = 1_000
_EXCERPT_LEN = 120


# A whole field set of plain numbers (names without ``=``/``,``): such a line takes the per-line reader's
# bulk branch, a handful of C calls for the whole line instead of a few Python statements per field.
_NUMERIC_FIELDS = re.compile(rf"[^=,]++={NUMBER}(?:,[^=,]++={NUMBER})*+").fullmatch
# Bodies shorter than this are read line by line: the bulk reader's fixed cost would not pay off.
_BULK_MIN_LINES = 8
_LAYOUTS_PER_PREFIX_MAX = 64


class _Prefix:
    """Cached meaning of one raw ``measurement,tag=value...`` text."""

    __slots__ = ("fields", "labels", "layouts", "limits", "measurement")

    def __init__(self, measurement: str, labels: tuple[tuple[str, str], ...], limits: SeriesLimits) -> None:
        self.measurement = measurement
        self.labels = labels
        self.limits = limits
        self.fields: dict[str, SeriesKey] = {}
        # "name,name,..." of a whole field set -> its series keys in that order (the bulk path).
        self.layouts: dict[str, tuple[SeriesKey, ...]] = {}

    def layout_for(self, names_text: str, names: list[str]) -> tuple[SeriesKey, ...] | None:
        """Series keys of a field set, or None when a name cannot be stored (the careful path words it)."""
        try:
            keys = tuple(self.fields.get(name) or self.key_for(name) for name in names)
        except NamingError:
            return None
        if len(self.layouts) < _LAYOUTS_PER_PREFIX_MAX:
            self.layouts[names_text] = keys
        return keys

    def key_for(self, field_key: str) -> SeriesKey:
        """Series key of one field; raises NamingError when the field name cannot be stored."""
        if not field_key:
            raise NamingError("missing field key")
        key = intern_key((make_metric_name(f"{self.measurement}_{field_key}", self.limits), self.labels))
        if len(self.fields) < _FIELDS_PER_PREFIX_MAX:
            self.fields[field_key] = key
        return key


# Process-wide: the mapping from prefix text to labels is a pure function, so sharing it across
# requests and organizations leaks nothing and makes every repeated series a dict hit.
_prefix_cache: dict[str, _Prefix | str] = {}
register_cache(_prefix_cache.clear)


class _LineError(Exception):
    """A line-level rejection; the message is InfluxDB-style reason text."""


class _OutOfWindow(_LineError):
    """A well-formed line whose timestamp is outside the accepted window; reported without the excerpt."""


def parse_line_protocol(body: bytes | str, options: ParseOptions) -> ParseResult:
    """Parse a line-protocol body; bad lines become errors, good lines are kept.

    Blocks of plain lines are read in bulk (``influx_bulk``); the lines the bulk reader is not certain
    about are read one by one (``_read_lines``, the reference it is tested against), in body order."""
    return _parse(body, options)


def _parse(
    body: bytes | str, options: ParseOptions, *, bulk: bool = True, blocks: tuple[int, int] = (512, 64)
) -> ParseResult:
    """``parse_line_protocol``; ``bulk=False`` reads every line with the per-line reader alone (the
    reference), ``blocks`` are the bulk block sizes (small ones let tests cover the block boundaries)."""
    result = ParseResult(runs=[])
    use_limits(options.limits)
    text, check_utf8 = _decode(body)
    lines = text.split("\n")
    # Checked once for the whole body instead of once per line: nearly every body is plain ASCII.
    body_kind = _BodyKind(
        plain="\\" not in text and '"' not in text and "\t" not in text, ascii=text.isascii(), check_utf8=check_utf8
    )
    if bulk:
        stopped_at = _read_in_blocks(lines, result, options, body_kind, blocks)
    else:
        stopped_at = _read_lines(lines, 0, len(lines), result, options, body_kind)
    if stopped_at:
        # The lines after the one that crossed the limit were not read: say how many, so that a client's
        # count of what was dropped is exact.
        unread = sum(1 for rest in lines[stopped_at:] if rest.strip() and not rest.lstrip().startswith("#"))
        if unread:
            result.skipped[UNREAD_LINES] = unread
    return result


class _BodyKind(NamedTuple):
    """What is true of the whole body, checked once: no backslash, quote or tab; ASCII; UTF-8 unsure."""

    plain: bool
    ascii: bool
    check_utf8: bool


def _read_in_blocks(
    lines: list[str], result: ParseResult, options: ParseOptions, body_kind: _BodyKind, blocks: tuple[int, int]
) -> int:
    """Read ``lines`` a block at a time in bulk; a block the bulk reader leaves alone is retried in small
    blocks, and a small block it leaves alone is read line by line, so one bad line costs the per-line
    reader a small block only. Returns the line number ``max_samples`` stopped at, or 0."""
    block_lines, small_lines = blocks
    end = len(lines)
    while end and not lines[end - 1]:  # the final newline(s): nothing to read
        end -= 1
    if end < _BULK_MIN_LINES:
        return _read_lines(lines, 0, len(lines), result, options, body_kind)
    limits = options.limits
    reader = BulkReader(
        result, options, _prefix_cache, lambda prefix: _lookup_prefix(prefix, limits), _PRECISION[options.precision]
    )
    for start in range(0, end, block_lines):
        stop = min(start + block_lines, end)
        if reader.read(lines[start:stop]):
            continue
        for small_start in range(start, stop, small_lines):
            small_stop = min(small_start + small_lines, stop)
            if stop - start > small_lines and reader.read(lines[small_start:small_stop]):
                continue
            stopped_at = _read_lines(lines, small_start, small_stop, result, options, body_kind)
            if stopped_at:
                return stopped_at
    return 0


def _read_lines(
    lines: list[str], start: int, stop: int, result: ParseResult, options: ParseOptions, body_kind: _BodyKind
) -> int:
    """The per-line reader: ``lines[start:stop]`` one by one, fast path first, careful scanner for the rest.
    Returns the line number ``max_samples`` stopped at, or 0."""
    limits = options.limits
    keys = result.keys
    times = result.times_us
    values = result.values
    keys_append = keys.append
    keys_extend = keys.extend
    runs = result.runs
    assert runs is not None
    runs_append = runs.append
    values_append = values.append
    values_extend = values.extend
    times_extend = times.extend
    numeric_fields = _NUMERIC_FIELDS
    lo = options.min_time_us
    hi = options.max_time_us
    now_us = options.now_us
    max_samples = options.max_samples
    mul, div = _PRECISION[options.precision]
    cache = _prefix_cache
    bools = _BOOLS
    float_start = _FLOAT_START
    float_end = _FLOAT_END
    plain_body, ascii_body, check_utf8 = body_kind
    # Lines come in runs with the same timestamp (every series of one scrape): convert it once per run.
    last_ts: str | None = None  # not "": a line ending in a space has an empty timestamp text
    last_t = 0

    lineno = start
    for line in islice(lines, start, stop):
        lineno += 1
        if not line:
            continue
        if line[-1] == "\r":
            line = line[:-1]
        if not line or line[0] in "# \t":
            line = line.lstrip(" \t")
            if not line or line[0] == "#":
                continue
        if check_utf8 and not _is_valid_utf8(line):
            add_error(result, options, f"line {lineno}", "invalid UTF-8")
            continue
        n0 = len(values)

        # ---- fast path: plain line, one space between sections, ASCII fields ----
        # (a tab can be a separator or part of a name depending on where it is: careful path only)
        fast = False
        if plain_body or ("\\" not in line and '"' not in line and "\t" not in line):
            parts = line.split(" ")
            nparts = len(parts)
            if nparts == 3:
                prefix, fields, ts = parts
            elif nparts == 2:
                prefix, fields = parts
                ts = None
            else:
                prefix = fields = ts = ""
            if fields and (ascii_body or fields.isascii()):
                if ts is None:
                    t = now_us
                    fast = True
                elif ts == last_ts:
                    t = last_t
                    fast = True
                elif ts.isascii() and ts.isdigit() and (len(ts) < 19 or (len(ts) == 19 and ts <= _INT64_MAX_TEXT)):
                    # Equal-length digit strings compare like numbers: this is the int64 range check.
                    t = last_t = int(ts) * mul // div
                    last_ts = ts
                    fast = True
        if fast:
            entry = cache.get(prefix)
            if entry is None:
                entry = _lookup_prefix(prefix, limits)
            if entry.__class__ is str:
                add_error(result, options, f"line {lineno}", _unable(line, entry))  # type: ignore[arg-type]
                continue
            if t < lo or t > hi:
                add_error(result, options, f"line {lineno}", options.time_problem(t) or "timestamp out of range")
                continue
            if numeric_fields(fields):
                # Bulk path: names and values alternate once "=" becomes ","; after the regex, "i" and "u"
                # occur in the values only as integer suffixes.
                parts = fields.replace("=", ",").split(",")
                names = parts[0::2]
                names_text = ",".join(names)
                layout = entry.layouts.get(names_text)  # type: ignore[union-attr]
                if layout is None:
                    layout = entry.layout_for(names_text, names)  # type: ignore[union-attr]
                if layout is not None:
                    numbers = ",".join(parts[1::2])
                    if "i" in numbers or "u" in numbers:
                        numbers = without_integer_minus_zero(numbers).replace("i", "").replace("u", "")
                    floats = list(map(float, numbers.split(",")))
                    total = sum(floats)
                    if total - total == 0.0:  # else an overflow to inf: the careful path applies the NaN policy
                        keys_extend(layout)
                        runs_append(layout)
                        values_extend(floats)
                        times_extend([t] * len(floats))
                        if len(values) > max_samples:
                            del keys[n0:], values[n0:], times[n0:], runs[-1]
                            add_error(result, options, f"line {lineno}", TOO_MANY_SAMPLES.format(limit=max_samples))
                            return lineno
                        continue
            fkeys = entry.fields  # type: ignore[union-attr]
            for kv in fields.split(","):
                k, _, v = kv.partition("=")
                if not v:
                    break
                key = fkeys.get(k)
                if key is None:
                    try:
                        key = entry.key_for(k)  # type: ignore[union-attr]
                    except NamingError:
                        break
                last = v[-1]
                if last == "i":
                    s = v[:-1]
                    if len(s) < 19 and (s.isdigit() or (s[:1] == "-" and s[1:].isdigit())):
                        # float(s) is the correctly rounded value of the integer s, same as float(int(s)),
                        # except that of "-0": adding +0.0 turns -0.0 into the integer's 0.
                        values_append(float(s) + 0.0)
                    else:
                        break
                elif last == "u":
                    s = v[:-1]
                    if len(s) < 20 and s.isdigit():
                        values_append(float(s))
                    else:
                        break
                else:
                    b = bools.get(v)
                    if b is not None:
                        values_append(b)
                    elif v[0] in float_start and last in float_end and "_" not in v:
                        try:
                            f = float(v)
                        except ValueError:
                            break
                        if f - f != 0.0:  # overflow to inf: let the careful path apply the NaN policy
                            break
                        values_append(f)
                    else:
                        break
                keys_append(key)
            else:
                nf = len(values) - n0
                times_extend([t] * nf)
                if len(values) > max_samples:
                    del keys[n0:], values[n0:], times[n0:]
                    add_error(result, options, f"line {lineno}", TOO_MANY_SAMPLES.format(limit=max_samples))
                    return lineno
                if nf:
                    runs_append(tuple(keys[n0:]))
                continue
            # Irregular field: undo this line's partial output and let the careful path decide.
            del keys[n0:], values[n0:]

        # ---- careful path ----
        try:
            _parse_line_slow(line, result, options, mul, div)
        except _LineError as exc:
            del keys[n0:], values[n0:], times[n0:]
            reason = str(exc) if isinstance(exc, _OutOfWindow) else _unable(line, str(exc))
            add_error(result, options, f"line {lineno}", reason)
            continue
        if len(values) > max_samples:
            del keys[n0:], values[n0:], times[n0:]
            add_error(result, options, f"line {lineno}", TOO_MANY_SAMPLES.format(limit=max_samples))
            return lineno
        if len(keys) > n0:
            runs_append(tuple(keys[n0:]))
    return 0


#: ``skipped`` key: lines after the one that reached ``max_samples``, not parsed at all.
UNREAD_LINES = "unread_lines"


def _decode(body: bytes | str) -> tuple[str, bool]:
    """Decode the body; with invalid UTF-8 somewhere, keep going and check line by line."""
    if isinstance(body, str):
        return body, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return body.decode("utf-8", "surrogateescape"), True


def _is_valid_utf8(line: str) -> bool:
    if line.isascii():
        return True
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unable(line: str, reason: str) -> str:
    excerpt = line if len(line) <= _EXCERPT_LEN else line[:_EXCERPT_LEN] + "..."
    return printable(f"unable to parse '{excerpt}': {reason}")


def _lookup_prefix(prefix: str, limits: SeriesLimits) -> _Prefix | str:
    """Cached ``measurement,tags`` meaning, or the reason it is invalid (cached too)."""
    entry = _prefix_cache.get(prefix)
    if entry is not None:
        return entry
    try:
        entry = _build_prefix(prefix, limits)
    except (_LineError, NamingError) as exc:
        entry = str(exc)
    if len(_prefix_cache) >= _PREFIX_CACHE_MAX:
        _prefix_cache.clear()
    _prefix_cache[prefix] = entry
    return entry


def _build_prefix(prefix: str, limits: SeriesLimits) -> _Prefix:
    measurement, i = _scan_token(prefix, 0, ", ", _MEASUREMENT_ESC)
    if not measurement:
        raise _LineError("missing measurement")
    bad = forbidden_char(measurement)
    if bad:
        raise _LineError(f"invalid measurement: it {bad}")
    n = len(prefix)
    tags: list[tuple[str, str]] = []
    while i < n:
        if prefix[i] != ",":  # an unescaped space: the caller cut the prefix wrongly
            raise _LineError("invalid tag format")
        key, i = _scan_token(prefix, i + 1, ",= ", _KEY_ESC)
        if i >= n or prefix[i] != "=":
            raise _LineError("missing tag value" if key else "missing tag key")
        if not key:
            raise _LineError("missing tag key")
        value, i = _scan_token(prefix, i + 1, ",= ", _KEY_ESC)
        if i < n and prefix[i] != ",":
            raise _LineError("invalid tag format")
        if not value:
            raise _LineError("missing tag value")
        tags.append((key, value))
    try:
        labels = make_labels(tags, limits)
    except NamingError as exc:
        raise _LineError(f"invalid tag: {exc}") from None
    return _Prefix(measurement, labels, limits)


def _scan_token(s: str, i: int, stops: str, escapable: frozenset[str]) -> tuple[str, int]:
    """Read from ``i`` to the first unescaped char in ``stops``; return (unescaped text, stop index)."""
    n = len(s)
    start = i
    out: list[str] | None = None
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            if out is None:
                out = [s[start:i]]
            nxt = s[i + 1]
            out.append(nxt if nxt in escapable else c + nxt)
            i += 2
            continue
        if c in stops:
            break
        if out is not None:
            out.append(c)
        i += 1
    return (s[start:i] if out is None else "".join(out)), i


def _prefix_end(line: str) -> int:
    """Index of the first unescaped space, which ends ``measurement,tags``."""
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == " ":
            return i
        i += 1
    return n


def _parse_line_slow(line: str, result: ParseResult, options: ParseOptions, mul: int, div: int) -> None:
    """Parse one line char by char and append its samples; raises _LineError with InfluxDB wording."""
    end = _prefix_end(line)
    entry = _lookup_prefix(line[:end], options.limits)
    if isinstance(entry, str):
        raise _LineError(entry)
    n = len(line)
    i = end
    while i < n and line[i] in " \t":
        i += 1
    if i >= n:
        raise _LineError("missing fields")

    fields: list[tuple[str, str, bool]] = []  # (key, raw value or string content, is_string)
    while True:
        key, i = _scan_token(line, i, "=, ", _KEY_ESC)
        if i >= n or line[i] != "=":
            raise _LineError("missing field value" if key and i >= n else "invalid field format")
        if not key:
            raise _LineError("missing field key")
        i += 1
        if i < n and line[i] == '"':
            text, i = _scan_string(line, i + 1)
            fields.append((key, text, True))
        else:
            start = i
            while i < n and line[i] not in ", \t":
                i += 1
            if i == start:
                raise _LineError("missing field value")
            fields.append((key, line[start:i], False))
        if i < n and line[i] == ",":
            i += 1
            continue
        if i < n and line[i] not in " \t":
            raise _LineError("invalid field format")
        break

    while i < n and line[i] in " \t":
        i += 1
    if i < n:
        start = i
        while i < n and line[i] not in " \t":
            i += 1
        ts = line[start:i]
        while i < n and line[i] in " \t":
            i += 1
        if i < n:
            raise _LineError("invalid timestamp: unexpected text after it")
        if not (ts.isascii() and _INT_RE.fullmatch(ts)):
            raise _LineError(f"bad timestamp '{ts}'")
        raw_t = int(ts)
        if not _INT64_MIN < raw_t <= _INT64_MAX:
            raise _LineError("bad timestamp: out of range")
        t = raw_t * mul // div
    else:
        t = options.now_us
    problem = options.time_problem(t)
    if problem:
        raise _OutOfWindow(problem)

    keys: list[SeriesKey] = []
    vals: list[float] = []
    strings = non_finite = 0
    for key_text, raw, is_string in fields:
        if is_string:
            strings += 1
            continue
        value = _field_value(raw)
        if value - value != 0.0:
            if options.nan_policy == "reject":
                raise _LineError(f"field '{key_text}': value {raw} is not a finite number")
            non_finite += 1
            continue
        try:
            series = entry.fields.get(key_text) or entry.key_for(key_text)
        except NamingError as exc:
            raise _LineError(f"invalid field key '{key_text}': {exc}") from None
        keys.append(series)
        vals.append(value)
    if strings:
        result.skipped["string_fields"] += strings
    if non_finite:
        result.skipped["non_finite"] += non_finite
    result.keys.extend(keys)
    result.values.extend(vals)
    result.times_us.extend([t] * len(vals))


def _scan_string(line: str, i: int) -> tuple[str, int]:
    """Read a quoted string field starting after its opening quote; return (content, index after it)."""
    n = len(line)
    out: list[str] = []
    start = i
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:
            nxt = line[i + 1]
            out.append(line[start:i])
            out.append(nxt if nxt in _STRING_ESC else c + nxt)
            i += 2
            start = i
            continue
        if c == '"':
            out.append(line[start:i])
            return "".join(out), i + 1
        i += 1
    raise _LineError("unbalanced quotes")


def _field_value(raw: str) -> float:
    """Numeric value of an unquoted field; raises _LineError with InfluxDB's reason when invalid."""
    if not raw.isascii():
        raise _LineError(f"invalid field value '{raw}'")
    last = raw[-1]
    if last == "i":
        digits = raw[:-1]
        if not _INT_RE.fullmatch(digits):
            raise _LineError(f"invalid integer '{raw}'")
        number = int(digits)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise _LineError(f"value out of range: '{raw}' does not fit a 64-bit integer")
        return float(number)
    if last == "u":
        digits = raw[:-1]
        if not _UINT_RE.fullmatch(digits):
            raise _LineError(f"invalid unsigned integer '{raw}'")
        number = int(digits)
        if number > _UINT64_MAX:
            raise _LineError(f"value out of range: '{raw}' does not fit a 64-bit unsigned integer")
        return float(number)
    b = _BOOLS.get(raw)
    if b is not None:
        return b
    if _FLOAT_RE.fullmatch(raw) or _NON_FINITE_RE.fullmatch(raw):
        return float(raw)
    if raw[0] in "0123456789-+.":
        raise _LineError(f"invalid number '{raw}'")
    raise _LineError(f"invalid boolean '{raw}'")
