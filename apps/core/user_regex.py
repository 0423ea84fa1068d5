"""Regular expressions that users write (label matchers ``=~`` / ``!~`` of silences, alert rules, the read
API and dashboards): compiled and matched by RE2, the engine of Prometheus and Alertmanager.

Python's ``re`` backtracks: ``(a|a)*b`` against forty "a" runs for hours and holds the GIL, so one
organization's pattern stopped the process for every organization. RE2 matches in time linear in the
text, and refuses what would need backtracking (backreferences, lookarounds, possessive quantifiers) --
as Prometheus does, so users' patterns mean here what they mean there.

Matching is fully anchored (Prometheus compiles ``^(?s:pattern)$``), and ``.`` matches a newline: that is
Prometheus's ``(?s)``, what PostgreSQL's ``~`` does for the read side's matchers, and what silences did
before (``re.DOTALL``), so a pattern selects the same values everywhere.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2


class UserRegexError(ValueError):
    """A pattern RE2 refuses; the message is RE2's reason, e.g. ``invalid perl operator: (?=``."""


_OPTIONS = re2.Options()
_OPTIONS.dot_nl = True
_OPTIONS.never_capture = True  # only "does it match" is asked: no group spans to compute
_OPTIONS.log_errors = False  # a refused pattern is an answer to its author, not a server log line
# Each compiled pattern may use this much memory (RE2's default is 8 MiB); with the cache below, the
# patterns of every organization together stay under a few hundred MiB.
_OPTIONS.max_mem = 1 << 20

#: RE2 reasons that mean "Perl / Python syntax RE2 does not have" rather than a typo.
_UNSUPPORTED = ("invalid escape sequence", "invalid perl operator", "bad repetition operator")


@lru_cache(maxsize=256)
def compile_user_regex(pattern: str) -> Any:
    """The compiled pattern (``.fullmatch(bytes)``), or UserRegexError with RE2's reason."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "rejected"
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        if reason.startswith(_UNSUPPORTED):
            reason += " (RE2 syntax, as in Prometheus: no backreferences, lookarounds or possessive quantifiers)"
        raise UserRegexError(reason) from None
    except UnicodeEncodeError:
        raise UserRegexError("the pattern is not valid Unicode (a lone surrogate)") from None


def user_regex_matches(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches the whole of ``text`` (UserRegexError when RE2 refuses the pattern)."""
    # Bytes: RE2 works on UTF-8 anyway, and the wrapper then maps no offsets back to characters;
    # surrogatepass so a value Python holds but UTF-8 cannot encode is compared rather than raising.
    return compile_user_regex(pattern).fullmatch(text.encode("utf-8", "surrogatepass")) is not None
