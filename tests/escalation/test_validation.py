"""Input checks shared by the API, the admin and the services."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.escalation.validation import (
    normalize_restrictions,
    parse_hhmm,
    restrictions_from_stored,
    validate_time_zone,
)


def test_restrictions_are_stored_in_week_order_and_lower_case():
    stored = normalize_restrictions([{"days": ["FRI", "mon"], "start": "09:00", "end": "17:00"},
                                     {"days": "weekdays", "start": "22:00", "end": "06:00"},
                                     {"start": "00:00", "end": "00:00"}])
    assert stored == [{"days": ["mon", "fri"], "start": "09:00", "end": "17:00"},
                      {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "06:00"},
                      {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}]
    first = restrictions_from_stored(stored)[0]
    assert (first.weekdays, first.start, first.end) == (frozenset({0, 4}), dt.time(9), dt.time(17))


@pytest.mark.parametrize(("data", "message"), [
    ({"days": ["mon"]}, "list of windows"),
    ([{"days": [], "start": "09:00", "end": "17:00"}], "days"),
    ([{"days": ["someday"], "start": "09:00", "end": "17:00"}], "days"),
    ([{"days": ["mon"], "start": "9:00", "end": "17:00"}], "HH:MM"),
    ([{"days": ["mon"], "start": "09:00"}], "HH:MM"),
    ([{"days": ["mon"], "start": "09:00", "end": "17:00", "tz": "UTC"}], "unknown keys"),
    (["09:00-17:00"], "object"),
])
def test_bad_restrictions_name_the_window(data, message):
    with pytest.raises(ValueError, match=message):
        normalize_restrictions(data)


@pytest.mark.parametrize("value", ["24:00", "09:60", "0900", "", None, 900])
def test_hhmm_is_strict(value):
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "europe/berlin", None])
def test_unknown_time_zones_are_refused(name):
    with pytest.raises(ValueError, match="Unknown time zone"):
        validate_time_zone(name)


def test_known_time_zones_pass():
    assert validate_time_zone("Australia/Lord_Howe") == "Australia/Lord_Howe"
    assert validate_time_zone("UTC") == "UTC"
