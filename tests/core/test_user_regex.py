"""apps.core.user_regex: users' patterns are RE2, fully anchored, "." matching a newline; catastrophic
patterns for a backtracking engine answer at once; what RE2 refuses is a UserRegexError with its reason."""

from __future__ import annotations

import pytest

from apps.core.user_regex import UserRegexError, compile_user_regex, user_regex_matches
from tests.forked import finishes_in_a_child

# Each takes a backtracking engine about 2**40 steps; RE2 a few microseconds.
CATASTROPHIC = [
    ("(a|a)*b", "a" * 40, False),
    ("(a+)+b", "a" * 40, False),
    ("(a+)+$", "a" * 40 + "!", False),
    ("(.*a){12}", "a" * 40 + "!", False),
    ("(a|aa)+", "a" * 40, True),
    ("(a|a)*b", "a" * 40 + "b", True),
]


def _match_the_catastrophic_patterns() -> None:
    for pattern, text, expected in CATASTROPHIC:
        assert user_regex_matches(pattern, text) is expected, pattern


def test_patterns_that_backtrack_exponentially_answer_at_once() -> None:
    finishes_in_a_child(_match_the_catastrophic_patterns)


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("db-.*", "db-12", True),
    ("db", "db-12", False),             # anchored at the end
    ("b-12", "db-12", False),           # and at the start
    ("db-1|db-12", "db-12", True),      # the alternation is inside the anchors
    ("db-1|web", "db-12", False),
    ("", "", True),
    (".*", "", True),
    (".+", "", False),
    ("a.b", "a\nb", True),              # "." matches a newline, as in Prometheus (?s) and PostgreSQL
    ("(?-s:a.b)", "a\nb", False),
    ("(?i)DB-\\d+", "db-12", True),
    ("é.", "éa", True),                 # characters, not bytes
    ("\\pL+", "Grüße", True),
])
def test_matching_is_anchored_and_dot_matches_newline(pattern: str, text: str, expected: bool) -> None:
    assert user_regex_matches(pattern, text) is expected


@pytest.mark.parametrize(("pattern", "says"), [
    ("(a)\\1", "backreferences"),      # RE2, like Prometheus, has no backreferences ...
    ("(?=a)a", "lookarounds"),         # ... nor lookarounds ...
    ("(?<!a)b", "lookarounds"),
    ("a++", "possessive"),             # ... nor possessive quantifiers
    ("(db", "missing )"),
    ("a)|(b", "unexpected )"),         # not smuggled through an anchoring group
    ("[", "missing ]"),
    ("a{1001}", "repetition"),
    ("\ud800", "not valid Unicode"),
])
def test_patterns_re2_refuses_raise_its_reason(pattern: str, says: str) -> None:
    with pytest.raises(UserRegexError) as info:
        compile_user_regex(pattern)
    assert says in str(info.value)
    with pytest.raises(UserRegexError):
        user_regex_matches(pattern, "a")


def test_a_value_utf8_cannot_encode_is_compared_not_raised() -> None:
    assert user_regex_matches("a.*", "a\ud800") is True
    assert user_regex_matches("a", "a\ud800") is False
