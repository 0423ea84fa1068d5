"""Bulk reading of plain InfluxDB line protocol: a block of lines in a few C-level calls.

A TSBS or Telegraf body is thousands of lines of one shape, ``measurement,tags fields timestamp`` with no
escape, no quote and plain numbers. The per-line reader of ``influx`` spends a dozen Python statements per
line and a few per value on them. This module reads a block of such lines as columns instead:

1. shape: one ``bytes.translate`` keeps the separators (space, newline, ``=``, ``,``) and the characters
   only the careful scanner handles (tab, backslash, quote, carriage return); one regex then checks that
   every line is ``prefix fields timestamp`` (or ``prefix fields``) with fields ``name=value(,name=value)*``;
2. one split of the block gives the prefix, fields and timestamp columns; one split of the fields column
   gives each line's field names and all the values;
3. values: when all are integers (``12i``, as TSBS sends), one regex check and one numpy conversion;
   otherwise one regex over all of them, or, when none has an integer suffix, ``float`` itself (over the
   characters ``-+.0-9eE`` it accepts exactly InfluxDB's float syntax), then one ``map(float, ...)``;
4. the prefix, the field-name layout and the timestamp of each line come from the caches the per-line
   reader uses too (timestamps converted once per distinct text), so the keys of a line are the same
   cached layout tuple, appended to ``runs`` as is.

All or nothing: a block's samples are added only when every line is certain to give what the per-line
reader gives (no error, no skipped field, under ``max_samples``); otherwise nothing is added and the caller
reads those lines one by one, which words the errors. The per-line reader is the reference: the
property test in tests/metrics/test_parsers_influx_bulk.py compares whole results on generated bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain, repeat
from typing import Protocol

import numpy as np

from apps.metrics.ingest.types import ParseOptions, ParseResult, SeriesKey

__all__ = ["NUMBER", "BulkReader", "without_integer_minus_zero"]

# A plain number as the per-line reader takes it in one go: ints (``12i``, <= 18 characters with the
# sign), unsigned ints (``12u``, <= 19 digits) and floats. Longer integers go to the careful scanner.
# Atomic (``(?>...)``): the first way a value matches is its only one -- "1234" can also be read as "12"
# then "34" by the float branch, and without the group a list of such values that fails at its end was
# retried every way: 8 ten-digit values then ",x" took 38 s (a body that stopped a worker).
NUMBER = r"(?>(?:[0-9]{1,18}|-[0-9]{1,17})i|[0-9]{1,19}u|-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
_NUMBERS = re.compile(rf"{NUMBER}(?:,{NUMBER})*+").fullmatch
# Only signed integers (``12i``), each of at most 18 characters: what numpy reads in one C call below.
_INTEGER = r"(?:[0-9]{1,18}|-[0-9]{1,17})i"
_INTEGERS = re.compile(rf"{_INTEGER}(?:,{_INTEGER})*+").fullmatch
# "-0i" (or "-000i") at the start of a comma-separated value: the integer 0, whose text float() reads as -0.0.
_INTEGER_MINUS_ZERO = re.compile(r"(?<![^,])-(?=0+i(?:,|$))")
_FLOAT_CHARS = re.compile(r"[-+.0-9eE,]*").fullmatch
_INT64_MAX = str(2**63 - 1)
# A block with at most this many distinct timestamps builds its times column a run at a time.
_RUNS_MAX = 16

_SHAPE_CHARS = b' \n=,\t\\"\r'
_NOT_SHAPE = bytes(sorted(set(range(256)) - set(_SHAPE_CHARS)))
# The separators of one line: any "=" and "," in the prefix (the prefix cache judges those), a space, then
# "=" for each field with "," between them.
_LINE = rb"[,=]*+ =(?:,=)*+"
_WITH_TIMES = re.compile(rb"(?:%s \n)*+%s " % (_LINE, _LINE)).fullmatch
_WITHOUT_TIMES = re.compile(rb"(?:%s\n)*+%s" % (_LINE, _LINE)).fullmatch

Layout = tuple[SeriesKey, ...]


class Prefix(Protocol):
    """What the bulk reader needs of a cached ``measurement,tags`` prefix (``influx._Prefix``)."""

    layouts: dict[str, Layout]

    def layout_for(self, names_text: str, names: list[str]) -> Layout | None: ...


class BulkReader:
    """Reads blocks of plain lines of one body into its ParseResult, or leaves a block alone."""

    __slots__ = ("div", "hi", "lo", "lookup_prefix", "mul", "now_us", "options", "prefixes", "result")

    def __init__(
        self,
        result: ParseResult,
        options: ParseOptions,
        prefixes: dict[str, Prefix | str],
        lookup_prefix: Callable[[str], Prefix | str],
        precision: tuple[int, int],
    ) -> None:
        self.result = result
        self.options = options
        self.prefixes = prefixes
        self.lookup_prefix = lookup_prefix
        self.mul, self.div = precision
        self.lo = options.min_time_us
        self.hi = options.max_time_us
        self.now_us = options.now_us

    def read(self, lines: list[str]) -> bool:
        """Add the samples of ``lines`` (non-empty) and return True, or add nothing and return False."""
        block = "\n".join(lines)
        if "\\" in block or '"' in block or "\t" in block:  # escapes, strings, tabs: the careful scanner's
            return False
        if "\r" in block:  # CRLF: the per-line reader drops one "\r" at the end of each line
            block = block.replace("\r\n", "\n").removesuffix("\r")
        if "#" in block and (block.startswith("#") or "\n#" in block):  # a comment line
            return False
        columns = _columns(block)
        if columns is None:
            return False
        shape, prefix_texts, field_texts, time_texts = columns
        fields = "\n".join(field_texts)
        if not fields.isascii():  # the per-line reader sends such lines to the careful scanner
            return False
        names, value_texts = _same_names(shape, field_texts, fields, time_texts is not None) or _names_per_line(fields)
        values = _values(value_texts)
        if values is None or len(self.result.values) + len(values) > self.options.max_samples:
            return False
        layouts = self._layouts(prefix_texts, names)
        if layouts is None:
            return False
        counts = list(map(len, layouts))
        if sum(counts) != len(values):  # cannot happen after the shape check; a misaligned block is never stored
            return False
        times = self._times(time_texts, counts, len(values))
        if times is None:
            return False
        result = self.result
        result.keys.extend(chain.from_iterable(layouts))
        result.runs.extend(layouts)  # type: ignore[union-attr]
        result.values.extend(values)
        result.times_us.extend(times)
        return True

    def _layouts(self, prefix_texts: list[str], names: str | list[str]) -> list[Layout] | None:
        """Each line's cached key tuple, or None when a prefix or a field name cannot be stored. ``names`` is
        the names text of every line, or one names text per line."""
        prefixes = list(map(self.prefixes.get, prefix_texts))
        names_per_line = repeat(names) if isinstance(names, str) else names
        try:
            return [prefix.layouts[text] for prefix, text in zip(prefixes, names_per_line, strict=False)]  # type: ignore[union-attr]
        except (KeyError, AttributeError):  # a prefix or field set not seen yet, or a prefix in error (a str)
            pass
        names_per_line = repeat(names) if isinstance(names, str) else names
        layouts = []
        for prefix, prefix_text, text in zip(prefixes, prefix_texts, names_per_line, strict=False):
            if prefix is None:
                prefix = self.lookup_prefix(prefix_text)
            if isinstance(prefix, str):
                return None
            layout = prefix.layouts.get(text) or prefix.layout_for(text, text.split(","))
            if layout is None:
                return None
            layouts.append(layout)
        return layouts

    def _times(self, time_texts: list[str] | None, counts: list[int], total: int) -> list[int] | None:
        """The times column (one entry per value), or None when a timestamp is not certainly in the window."""
        lo, hi = self.lo, self.hi
        if time_texts is None:
            return [self.now_us] * total if lo <= self.now_us <= hi else None
        # Lines come in runs with one timestamp (every series of one scrape): convert each text once.
        by_text: dict[str, int] = dict.fromkeys(time_texts)  # type: ignore[arg-type]
        for text in by_text:
            # The per-line reader's fast form: ASCII digits within int64 (equal lengths compare as numbers).
            if not (text.isascii() and text.isdigit()) or len(text) > 19 or (len(text) == 19 and text > _INT64_MAX):
                return None
            t = int(text) * self.mul // self.div
            if not lo <= t <= hi:
                return None
            by_text[text] = t
        if len(by_text) == 1:
            return [t] * total
        if len(by_text) <= _RUNS_MAX:
            times = _times_by_run(by_text, time_texts, counts)
            if times is not None:
                return times
        return list(chain.from_iterable(map(repeat, map(by_text.__getitem__, time_texts), counts)))


def _columns(block: str) -> tuple[bytes, list[str], list[str], list[str] | None] | None:
    """(separators, prefixes, field sets, timestamps or None) of a block whose every line has the plain
    shape, or None."""
    try:
        shape = block.encode().translate(None, _NOT_SHAPE)
    except UnicodeEncodeError:  # a line of invalid UTF-8 (the body was decoded with surrogateescape)
        return None
    if _WITH_TIMES(shape):
        parts = block.replace("\n", " ").split(" ")
        return shape, parts[0::3], parts[1::3], parts[2::3]
    if _WITHOUT_TIMES(shape):
        parts = block.replace("\n", " ").split(" ")
        return shape, parts[0::2], parts[1::2], None
    return None


def _same_names(shape: bytes, field_texts: list[str], fields: str, with_times: bool) -> tuple[str, list[str]] | None:
    """(names text, value texts) when every line has the field names of the first one, as in a TSBS body or
    one Telegraf plugin's lines: one split of the column and one list comparison, or None."""
    first = field_texts[0].replace("=", ",").split(",")[0::2]
    count = len(field_texts)
    # Every line has as many fields as the first: its separators end with this (its prefix has no space).
    line_end = b" =" + b",=" * (len(first) - 1) + (b" " if with_times else b"")
    if shape.count(line_end + b"\n") != count - 1 or not shape.endswith(line_end):
        return None
    tokens = fields.replace("\n", ",").replace("=", ",").split(",")
    if tokens[0::2] != first * count:
        return None
    return ",".join(first), tokens[1::2]


def _names_per_line(fields: str) -> tuple[list[str], list[str]]:
    """(names text of each line, value texts) of any fields column of the plain shape."""
    # "=" and "," become one separator, and each line end a "\n" name with a "\n" value, so that names and
    # values alternate across the whole column (the shape check made every field one "name=value").
    tokens = fields.replace("\n", ",\n=\n,").replace("=", ",").split(",")
    return ",".join(tokens[0::2]).split(",\n,"), ",".join(tokens[1::2]).replace(",\n", "").split(",")


def _values(texts: list[str]) -> list[float] | None:
    """The values as floats, or None unless every one is a plain finite number as the per-line reader reads
    it in one go."""
    numbers = ",".join(texts)
    if "u" not in numbers and "." not in numbers and _INTEGERS(numbers):
        return _integers(numbers, len(texts))
    if "i" not in numbers and "u" not in numbers and _FLOAT_CHARS(numbers):
        # No integer suffix: over these characters float() accepts exactly the float syntax of NUMBER (plus
        # a leading "+", which the careful scanner accepts with the same value), so converting is checking.
        try:
            values = list(map(float, texts))
        except ValueError:
            return None
    elif _NUMBERS(numbers):
        # After the regex, "i" and "u" occur only as integer suffixes.
        numbers = without_integer_minus_zero(numbers)
        values = list(map(float, numbers.replace("i", "").replace("u", "").split(",")))
    else:
        return None
    total = sum(values)
    if total - total != 0.0:  # an overflow to inf (1e400): the per-line reader applies the NaN policy
        return None
    return values


def without_integer_minus_zero(numbers: str) -> str:
    """``numbers`` (comma-separated field values) with the sign dropped from integer zeros: ``-0i`` is the
    integer 0 (InfluxDB stores 0), but the fast readers convert integer texts with ``float``, which gives -0.0
    for "-0". A substring test first: nearly no body has one."""
    return _INTEGER_MINUS_ZERO.sub("", numbers) if "-0" in numbers else numbers


def _integers(numbers: str, count: int) -> list[float] | None:
    """``12i,-3i,...`` (already checked by ``_INTEGERS``) as floats. numpy reads decimal integers in C, about
    13 ns each against ~80 for ``int()`` and ~180 for ``float()`` of a str: a TSBS request's 50,000 values
    in 4 instead of 13 ms. Converting int64 to float64 rounds to nearest, as ``float(int(text))`` does;
    18 characters cannot overflow int64."""
    parsed = np.fromstring(numbers.replace("i", ""), sep=",", dtype=np.int64)
    if len(parsed) != count:  # cannot happen after the check; never store a misaligned column
        return None
    return parsed.astype(np.float64).tolist()


def _times_by_run(by_text: dict[str, int], time_texts: list[str], counts: list[int]) -> list[int] | None:
    """The times column a run of lines with one timestamp at a time, or None unless the lines of each
    timestamp are one run (as a time-major body sends them)."""
    times: list[int] = []
    start = 0
    for text, t in by_text.items():
        stop = start + time_texts.count(text)
        if time_texts[start:stop].count(text) != stop - start:
            return None
        times += [t] * sum(counts[start:stop])
        start = stop
    return times
