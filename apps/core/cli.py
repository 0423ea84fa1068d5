"""Argument types for management commands: a bad value is argparse's usage error naming the option
(exit status 2), never a traceback. A ``type=`` callable that raised ``CommandError`` or let an
``OverflowError`` through printed a stack trace, because Django parses the arguments outside the
``try`` that turns ``CommandError`` into a message."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# Ten years: longer than any retention, and far from datetime's limits when added to or taken from now.
MAX_DURATION = dt.timedelta(days=3650)
_DURATION = re.compile(r"\s*(\d{1,12}(?:\.\d{1,9})?)\s*([smhd]?)\s*")


def duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``36h``, ``2d`` or plain seconds, at most ``MAX_DURATION``."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected e.g. 1d, 36h, 90m or seconds, not {text!r}")
    seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if seconds > MAX_DURATION.total_seconds():
        raise argparse.ArgumentTypeError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return dt.timedelta(seconds=seconds)


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A type accepting whole numbers from ``low`` to ``high`` inclusive."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    parse.__name__ = "whole number"  # what argparse names in "invalid <type> value" messages
    return parse


def seconds(high: float) -> Callable[[str], float]:
    """A type accepting a finite number of seconds above 0 and at most ``high`` (``nan`` and ``inf`` parse
    as floats, and an agent told to wait ``nan`` seconds between pushes would never say why it misbehaves)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
        if not 0 < value <= high:  # False for nan too
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {high:g} seconds, not {text!r}")
        return value

    parse.__name__ = "seconds"
    return parse
