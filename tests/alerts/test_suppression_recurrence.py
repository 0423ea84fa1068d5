"""Maintenance recurrence: RRULEs expanded on local wall time, so a weekly 02:30 window stays 02:30 local
across the DST changes (Europe/Berlin, America/New_York), a nonexistent local time is read with the
offset before the gap, ``until`` ends the series, and bad input names its field."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from apps.alerts.models import MaintenanceWindow
from apps.alerts.suppression import clean_schedule, next_occurrences, occurrence_covering


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def window(starts_at: dt.datetime, *, rrule: str = "", time_zone: str = "UTC", duration: int = 3600,
           until: dt.datetime | None = None) -> MaintenanceWindow:
    return MaintenanceWindow(name="w", starts_at=starts_at, duration_seconds=duration, rrule=rrule,
                             time_zone=time_zone, until=until)


# Sunday 1 March 2026, 02:30 in Berlin (CET, UTC+1) = 01:30 UTC; one hour, every Sunday.
BERLIN_SUNDAYS = window(utc(2026, 3, 1, 1, 30), rrule="FREQ=WEEKLY;BYDAY=SU", time_zone="Europe/Berlin")


@pytest.mark.parametrize(("at", "expected_start"), [
    (utc(2026, 3, 22, 1, 45), utc(2026, 3, 22, 1, 30)),   # CET: 02:30 local = 01:30 UTC
    (utc(2026, 4, 5, 0, 45), utc(2026, 4, 5, 0, 30)),     # CEST: 02:30 local = 00:30 UTC
    (utc(2026, 10, 18, 0, 45), utc(2026, 10, 18, 0, 30)),  # still CEST
    (utc(2026, 11, 1, 1, 45), utc(2026, 11, 1, 1, 30)),   # CET again
])
def test_berlin_weekly_window_stays_at_local_wall_time_across_dst(at, expected_start):
    assert occurrence_covering(BERLIN_SUNDAYS, at) == (expected_start, expected_start + dt.timedelta(hours=1))


@pytest.mark.parametrize("at", [
    utc(2026, 4, 5, 1, 45),    # a fixed-UTC weekly series would still be in maintenance here
    utc(2026, 4, 5, 0, 15),    # before the local 02:30
    utc(2026, 3, 24, 1, 45),   # a Tuesday
    utc(2026, 2, 22, 1, 45),   # before the first occurrence
])
def test_berlin_weekly_window_is_not_in_progress_off_its_local_time(at):
    assert occurrence_covering(BERLIN_SUNDAYS, at) is None


def test_nonexistent_local_start_takes_the_offset_before_the_gap():
    """29 March 2026: Berlin jumps from 02:00 to 03:00, so 02:30 does not exist. RFC 5545 reads it with
    the offset before the gap (UTC+1): 01:30 UTC, i.e. 03:30 summer time, for the full hour."""
    assert occurrence_covering(BERLIN_SUNDAYS, utc(2026, 3, 29, 1, 30)) == (utc(2026, 3, 29, 1, 30),
                                                                            utc(2026, 3, 29, 2, 30))
    assert occurrence_covering(BERLIN_SUNDAYS, utc(2026, 3, 29, 2, 29)) is not None
    assert occurrence_covering(BERLIN_SUNDAYS, utc(2026, 3, 29, 1, 15)) is None
    assert occurrence_covering(BERLIN_SUNDAYS, utc(2026, 3, 29, 2, 30)) is None


def test_ambiguous_local_start_is_its_first_instant():
    """25 October 2026: Berlin goes from 03:00 back to 02:00, so 02:30 happens twice; the window starts at
    the first (summer time, 00:30 UTC) and lasts one real hour."""
    assert occurrence_covering(BERLIN_SUNDAYS, utc(2026, 10, 25, 0, 30)) == (utc(2026, 10, 25, 0, 30),
                                                                             utc(2026, 10, 25, 1, 30))
    assert occurrence_covering(BERLIN_SUNDAYS, utc(2026, 10, 25, 1, 35)) is None


def test_next_occurrences_cross_the_spring_change():
    got = [start for start, _ in next_occurrences(BERLIN_SUNDAYS, utc(2026, 3, 20), 4)]
    assert got == [utc(2026, 3, 22, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30), utc(2026, 4, 12, 0, 30)]


def test_next_occurrences_include_the_one_in_progress():
    got = next_occurrences(BERLIN_SUNDAYS, utc(2026, 4, 5, 1, 0), 2)
    assert got[0] == (utc(2026, 4, 5, 0, 30), utc(2026, 4, 5, 1, 30))
    assert got[1][0] == utc(2026, 4, 12, 0, 30)


def test_new_york_weekly_window_across_both_changes():
    """Sundays 02:00 for two hours in New York: 8 March 2026 02:00 does not exist (read as EST, 07:00 UTC);
    EDT weeks start at 06:00 UTC; back on EST from 1 November."""
    sundays = window(utc(2026, 3, 1, 7, 0), rrule="FREQ=WEEKLY;BYDAY=SU", time_zone="America/New_York",
                     duration=7200)
    starts = [start for start, _ in next_occurrences(sundays, utc(2026, 2, 28), 3)]
    assert starts == [utc(2026, 3, 1, 7), utc(2026, 3, 8, 7), utc(2026, 3, 15, 6)]
    autumn = [start for start, _ in next_occurrences(sundays, utc(2026, 10, 24), 2)]
    assert autumn == [utc(2026, 10, 25, 6), utc(2026, 11, 1, 7)]
    assert occurrence_covering(sundays, utc(2026, 3, 15, 7, 30)) == (utc(2026, 3, 15, 6), utc(2026, 3, 15, 8))
    assert occurrence_covering(sundays, utc(2026, 3, 15, 8, 30)) is None


def test_new_york_daily_window_in_the_repeated_hour_starts_at_the_first_one():
    nightly = window(utc(2026, 10, 30, 5, 30), rrule="FREQ=DAILY", time_zone="America/New_York", duration=1800)
    # 1 November 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST): the first one counts.
    assert occurrence_covering(nightly, utc(2026, 11, 1, 5, 45)) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6))
    assert occurrence_covering(nightly, utc(2026, 11, 1, 6, 45)) is None
    assert occurrence_covering(nightly, utc(2026, 11, 2, 6, 45)) == (utc(2026, 11, 2, 6, 30), utc(2026, 11, 2, 7))


def test_until_stops_the_series_but_not_a_started_occurrence():
    until = utc(2026, 3, 22, 1, 45)  # inside the 22 March occurrence
    limited = window(utc(2026, 3, 1, 1, 30), rrule="FREQ=WEEKLY;BYDAY=SU", time_zone="Europe/Berlin", until=until)
    assert occurrence_covering(limited, utc(2026, 3, 22, 2, 15)) is not None
    assert occurrence_covering(limited, utc(2026, 3, 29, 1, 45)) is None
    assert [s for s, _ in next_occurrences(limited, utc(2026, 3, 10), 5)] == [utc(2026, 3, 15, 1, 30),
                                                                              utc(2026, 3, 22, 1, 30)]


def test_rrule_until_in_utc_and_count_are_honoured():
    utc_until = window(utc(2026, 3, 1, 1, 30), rrule="RRULE:FREQ=WEEKLY;BYDAY=SU;UNTIL=20260315T013000Z",
                       time_zone="Europe/Berlin")
    assert [s for s, _ in next_occurrences(utc_until, utc(2026, 1, 1), 5)] == [utc(2026, 3, 1, 1, 30),
                                                                               utc(2026, 3, 8, 1, 30),
                                                                               utc(2026, 3, 15, 1, 30)]
    counted = window(utc(2026, 3, 1, 1, 30), rrule="FREQ=DAILY;COUNT=2", time_zone="Europe/Berlin")
    assert len(next_occurrences(counted, utc(2026, 1, 1), 5)) == 2


def test_one_off_window_covers_start_to_end():
    once = window(utc(2026, 6, 1, 10), duration=600)
    assert occurrence_covering(once, utc(2026, 6, 1, 10)) == (utc(2026, 6, 1, 10), utc(2026, 6, 1, 10, 10))
    assert occurrence_covering(once, utc(2026, 6, 1, 10, 10)) is None
    assert occurrence_covering(once, utc(2026, 6, 1, 9, 59)) is None
    assert next_occurrences(once, utc(2026, 6, 2), 3) == []


def test_an_old_hourly_window_is_cheap_to_check():
    hourly = window(utc(2020, 1, 1), rrule="FREQ=HOURLY", duration=60)
    assert occurrence_covering(hourly, utc(2026, 12, 4, 20, 0, 30)) == (utc(2026, 12, 4, 20), utc(2026, 12, 4, 20, 1))
    assert occurrence_covering(hourly, utc(2026, 12, 4, 20, 1, 30)) is None


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"rrule": "FREQ=FORTNIGHTLY"}, "rrule"),
    ({"rrule": "BYDAY=XX;FREQ=WEEKLY"}, "rrule"),
    ({"rrule": "hello"}, "rrule"),
    ({"rrule": "FREQ=MINUTELY"}, "rrule"),
    ({"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"}, "rrule"),
    ({"rrule": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),   # never occurs
    ({"rrule": "FREQ=WEEKLY;UNTIL=20250101T000000Z"}, "rrule"),    # ends before it starts
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"time_zone": ""}, "time_zone"),
    ({"until": utc(2025, 1, 1)}, "until"),
    ({"duration_seconds": 0}, "duration"),
])
def test_bad_schedules_name_the_field(kwargs, field):
    """Including a rule that never occurs, refused quickly (dateutil alone would search until 9999)."""
    schedule = {"starts_at": utc(2026, 3, 1), "duration_seconds": 3600, "rrule": "FREQ=DAILY",
                "time_zone": "Europe/Berlin", "until": None, **kwargs}
    with pytest.raises(ValidationError) as info:
        clean_schedule(**schedule)
    assert field in info.value.message_dict
