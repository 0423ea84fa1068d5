"""Query parameters of the server-rendered pages: a value a page cannot read is a 400 naming the parameter
and why (``state: ...``), never silently ignored (``?state=bogus`` used to show the firing tab as if it
had been asked for; ``?page=abc`` page one).

A parser raises ``BadParameter``; ``ApiErrorMiddleware`` answers it like a NUL in a query parameter (plain
text for a page, JSON for other clients), so there is one way a page refuses a parameter. Absent or empty
means "not given": a form's empty select submits ``?severity=`` and must keep meaning every severity."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

#: Longest part of a refused value echoed back in the message.
ECHO = 40
_DIGITS = re.compile(r"[0-9]+")
#: Above any page count: a longer number of digits is "beyond the last page" without parsing it.
_MAX_DIGITS = 18


class BadParameter(Exception):
    """``name`` cannot be read; ``why`` completes "<name>: " for the person who sent it."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name = name
        self.why = why

    @property
    def message(self) -> str:
        return f"{self.name}: {self.why}"


def echo(value: str) -> str:
    """A refused value as the message quotes it: repr, cut to ``ECHO`` characters."""
    return repr(value[:ECHO] + ("…" if len(value) > ECHO else ""))


def _given(params: Any, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def choice_param(params: Any, name: str, choices: Iterable[str]) -> str | None:
    """One of ``choices``, or None when absent or empty."""
    value = _given(params, name)
    if value is None:
        return None
    choices = list(choices)
    if value not in choices:
        raise BadParameter(name, f"must be one of {', '.join(choices)}, not {echo(value)}.")
    return value


def uuid_param(params: Any, name: str) -> uuid.UUID | None:
    """A UUID (an object's public id, a page cursor), or None when absent or empty."""
    value = _given(params, name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadParameter(name, f"must be a UUID, not {echo(value)}.") from None


def page_param(params: Any, name: str = "page") -> int:
    """A page number from 1; 1 when absent or empty. A number past the last page is for the paginator
    (``Paginator.get_page`` shows the last page), but not a number at all, or below 1, is a 400 --
    ``get_page`` would quietly show page one instead."""
    value = _given(params, name)
    if value is None:
        return 1
    if not _DIGITS.fullmatch(value):
        raise BadParameter(name, f"must be a whole number from 1, not {echo(value)}.")
    if len(value.lstrip("0")) > _MAX_DIGITS:
        return 10**_MAX_DIGITS
    number = int(value)
    if number < 1:
        raise BadParameter(name, f"must be a whole number from 1, not {echo(value)}.")
    return number
