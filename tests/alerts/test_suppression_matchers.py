"""Silence matchers: Prometheus semantics (= != =~ !~, regexes fully anchored, a missing label is ""),
strings parsed by the metrics read side's parser, and refusals that name the matcher."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.alerts.suppression import clean_matchers, matcher_matches, matchers_match

LABELS = {"alertname": "cpu", "host": "db-12", "severity": "critical", "env": "prod"}


@pytest.mark.parametrize(("name", "op", "value", "expected"), [
    ("alertname", "=", "cpu", True),
    ("alertname", "=", "cp", False),
    ("alertname", "!=", "cpu", False),
    ("alertname", "!=", "disk", True),
    ("host", "=~", "db-.*", True),
    ("host", "=~", "db", False),          # anchored: a substring is not a match
    ("host", "=~", "b-12", False),        # anchored at the start too
    ("host", "=~", "db-1|db-12", True),   # the alternation is inside the anchors
    ("host", "=~", "db-1|web", False),    # ...so "db-1" does not match "db-12" by prefix
    ("host", "!~", "db-.*", False),
    ("host", "!~", "web-.*", True),
    ("team", "=", "", True),              # a missing label is the empty string
    ("team", "!=", "", False),
    ("team", "=~", ".*", True),
    ("team", "=~", ".+", False),
    ("team", "!~", "x", True),
])
def test_matcher_semantics(name, op, value, expected):
    assert matcher_matches({"name": name, "op": op, "value": value}, LABELS) is expected


def test_all_matchers_must_match():
    both = [{"name": "alertname", "op": "=", "value": "cpu"}, {"name": "env", "op": "=", "value": "prod"}]
    assert matchers_match(both, LABELS)
    assert not matchers_match([*both, {"name": "severity", "op": "=", "value": "warning"}], LABELS)


def test_matcher_string_goes_through_the_query_parser():
    assert clean_matchers('alertname="cpu", host=~"db-.*",env!="dev"') == [
        {"name": "alertname", "op": "=", "value": "cpu"},
        {"name": "host", "op": "=~", "value": "db-.*"},
        {"name": "env", "op": "!=", "value": "dev"},
    ]
    assert clean_matchers('{alertname="cpu"}') == [{"name": "alertname", "op": "=", "value": "cpu"}]


def test_a_list_is_validated_and_op_defaults_to_equality():
    assert clean_matchers([{"name": "alertname", "value": "cpu"}]) == [{"name": "alertname", "op": "=", "value": "cpu"}]


@pytest.mark.parametrize(("raw", "needle"), [
    ([{"name": "alertname", "op": "=", "value": "cpu"}, {"name": "host", "op": "=~", "value": "(db"}],
     "matchers[1] (host=~"),
    ('alertname="cpu",host=~"(db"', "invalid regular expression for host"),
    ([{"name": "9lives", "op": "=", "value": "x"}], "matchers[0]"),
    ([{"name": "host", "op": "==", "value": "x"}], "op must be one of"),
    ([{"name": "host", "op": "=", "value": 3}], "value must be a string"),
    ('alertname = cpu', "cannot parse label matcher"),
    ([], "at least one matcher"),
    ("", "at least one matcher"),
    ('host=~".*"', "must not match the empty string"),
    ([{"name": "host", "op": "!=", "value": "db-1"}], "must not match the empty string"),
    (42, "expected a matcher string"),
])
def test_bad_matchers_are_refused_naming_the_matcher(raw, needle):
    with pytest.raises(ValidationError) as info:
        clean_matchers(raw)
    assert needle in " ".join(info.value.message_dict["matchers"])
