"""who_is_on_call and final_schedule as pure functions, table-driven across DST changes: handoffs stay
at their local time on both sides of a change, nonexistent and ambiguous handoff times follow the
documented rule (first instant the clock reads it or later), in Berlin, New York and Lord Howe."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.escalation.oncall import (
    DAY_SECONDS,
    WEEK_SECONDS,
    Layer,
    Override,
    Restriction,
    Schedule,
    Shift,
    final_schedule,
    local_to_instant,
    on_call_at,
    wall_clock,
    who_is_on_call,
    zone,
)

SECOND = dt.timedelta(seconds=1)
WEEKDAYS = frozenset(range(5))


def Z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def layer(shift_seconds: int, start_date: str, handoff: str, members: tuple, priority: int = 0,
          restrictions: tuple = ()) -> Layer:
    hour, minute = map(int, handoff.split(":"))
    return Layer(priority=priority, shift_seconds=shift_seconds, start_date=dt.date.fromisoformat(start_date),
                 handoff_time=dt.time(hour, minute), members=members, restrictions=restrictions)


# (zone, shift seconds, start date, handoff time, the first handoffs in UTC)
HANDOFFS = [
    # Europe/Berlin: spring forward 2026-03-29 02:00 CET -> 03:00 CEST; fall back 2026-10-25 03:00 -> 02:00.
    ("Europe/Berlin", DAY_SECONDS, "2026-03-27", "09:00",
     ["2026-03-27T08:00", "2026-03-28T08:00", "2026-03-29T07:00", "2026-03-30T07:00"]),
    ("Europe/Berlin", DAY_SECONDS, "2026-10-23", "09:00",
     ["2026-10-23T07:00", "2026-10-24T07:00", "2026-10-25T08:00", "2026-10-26T08:00"]),
    # 02:30 does not exist on 03-29: the handoff is when the clock jumps past it, 03:00 CEST.
    ("Europe/Berlin", DAY_SECONDS, "2026-03-27", "02:30",
     ["2026-03-27T01:30", "2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"]),
    # 02:30 happens twice on 10-25: the handoff is at the first, 02:30 CEST.
    ("Europe/Berlin", DAY_SECONDS, "2026-10-23", "02:30",
     ["2026-10-23T00:30", "2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"]),
    ("Europe/Berlin", WEEK_SECONDS, "2026-03-22", "09:00",
     ["2026-03-22T08:00", "2026-03-29T07:00", "2026-04-05T07:00"]),
    ("Europe/Berlin", WEEK_SECONDS, "2026-10-18", "09:00",
     ["2026-10-18T07:00", "2026-10-25T08:00", "2026-11-01T08:00"]),
    ("Europe/Berlin", WEEK_SECONDS, "2026-03-22", "02:30",
     ["2026-03-22T01:30", "2026-03-29T01:00", "2026-04-05T00:30"]),
    ("Europe/Berlin", WEEK_SECONDS, "2026-10-18", "02:30",
     ["2026-10-18T00:30", "2026-10-25T00:30", "2026-11-01T01:30"]),
    # America/New_York: spring forward 2026-03-08 02:00 EST -> 03:00 EDT; fall back 2026-11-01 02:00 -> 01:00.
    ("America/New_York", DAY_SECONDS, "2026-03-06", "09:00",
     ["2026-03-06T14:00", "2026-03-07T14:00", "2026-03-08T13:00", "2026-03-09T13:00"]),
    ("America/New_York", DAY_SECONDS, "2026-10-30", "09:00",
     ["2026-10-30T13:00", "2026-10-31T13:00", "2026-11-01T14:00", "2026-11-02T14:00"]),
    ("America/New_York", DAY_SECONDS, "2026-03-06", "02:30",
     ["2026-03-06T07:30", "2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"]),
    # New York repeats 01:00-02:00, so 02:30 is unambiguous on 11-01 (EST) ...
    ("America/New_York", DAY_SECONDS, "2026-10-30", "02:30",
     ["2026-10-30T06:30", "2026-10-31T06:30", "2026-11-01T07:30", "2026-11-02T07:30"]),
    # ... and 01:30 is the ambiguous one: first reading, 01:30 EDT.
    ("America/New_York", DAY_SECONDS, "2026-10-30", "01:30",
     ["2026-10-30T05:30", "2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"]),
    ("America/New_York", WEEK_SECONDS, "2026-03-01", "09:00",
     ["2026-03-01T14:00", "2026-03-08T13:00", "2026-03-15T13:00"]),
    ("America/New_York", WEEK_SECONDS, "2026-10-25", "09:00",
     ["2026-10-25T13:00", "2026-11-01T14:00", "2026-11-08T14:00"]),
    ("America/New_York", WEEK_SECONDS, "2026-03-01", "02:30",
     ["2026-03-01T07:30", "2026-03-08T07:00", "2026-03-15T06:30"]),
    ("America/New_York", WEEK_SECONDS, "2026-10-25", "02:30",
     ["2026-10-25T06:30", "2026-11-01T07:30", "2026-11-08T07:30"]),
    # Australia/Lord_Howe: +10:30 standard, +11 summer; the change is 30 minutes. Spring forward
    # 2026-10-04 02:00 -> 02:30; fall back 2026-04-05 02:00 -> 01:30.
    ("Australia/Lord_Howe", DAY_SECONDS, "2026-10-02", "09:00",
     ["2026-10-01T22:30", "2026-10-02T22:30", "2026-10-03T22:00", "2026-10-04T22:00"]),
    ("Australia/Lord_Howe", DAY_SECONDS, "2026-10-02", "02:15",  # 02:15 on 10-04 does not exist: 02:30 +11
     ["2026-10-01T15:45", "2026-10-02T15:45", "2026-10-03T15:30", "2026-10-04T15:15"]),
    ("Australia/Lord_Howe", DAY_SECONDS, "2026-04-03", "09:00",
     ["2026-04-02T22:00", "2026-04-03T22:00", "2026-04-04T22:30", "2026-04-05T22:30"]),
    ("Australia/Lord_Howe", DAY_SECONDS, "2026-04-03", "01:45",  # 01:45 on 04-05 happens twice: the first (+11)
     ["2026-04-02T14:45", "2026-04-03T14:45", "2026-04-04T14:45", "2026-04-05T15:15"]),
    ("Australia/Lord_Howe", WEEK_SECONDS, "2026-09-27", "09:00",
     ["2026-09-26T22:30", "2026-10-03T22:00", "2026-10-10T22:00"]),
    # Custom shift lengths are wall-clock time too: 12-hour shifts stay 09:00/21:00 local.
    ("Europe/Berlin", 12 * 3600, "2026-03-28", "09:00",
     ["2026-03-28T08:00", "2026-03-28T20:00", "2026-03-29T07:00", "2026-03-29T19:00"]),
    # 8-hour shifts from 18:00: the 02:00 handoff falls into New York's gap and happens at 03:00 EDT.
    ("America/New_York", 8 * 3600, "2026-03-07", "18:00",
     ["2026-03-07T23:00", "2026-03-08T07:00", "2026-03-08T14:00", "2026-03-08T22:00"]),
]

MEMBERS = ("ann", "ben", "cat")


@pytest.mark.parametrize(("tz", "shift_seconds", "start_date", "handoff", "expected"), HANDOFFS)
def test_who_is_on_call_hands_off_at_local_time_across_dst(tz, shift_seconds, start_date, handoff, expected):
    schedule = Schedule(tz, (layer(shift_seconds, start_date, handoff, MEMBERS),))
    instants = [Z(text) for text in expected]
    assert who_is_on_call(schedule, instants[0] - SECOND) == []  # nobody before the first handoff
    for index, instant in enumerate(instants):
        assert who_is_on_call(schedule, instant) == [MEMBERS[index % 3]], instant
        if index:
            assert who_is_on_call(schedule, instant - SECOND) == [MEMBERS[(index - 1) % 3]], instant


@pytest.mark.parametrize(("tz", "shift_seconds", "start_date", "handoff", "expected"), HANDOFFS)
def test_final_schedule_has_the_same_handoffs(tz, shift_seconds, start_date, handoff, expected):
    schedule = Schedule(tz, (layer(shift_seconds, start_date, handoff, MEMBERS),))
    instants = [Z(text) for text in expected]
    shifts = final_schedule(schedule, instants[0] - dt.timedelta(hours=1), instants[-1])
    assert [shift.start for shift in shifts] == instants[:-1]
    assert [shift.end for shift in shifts] == instants[1:]
    assert [shift.user for shift in shifts] == [MEMBERS[i % 3] for i in range(len(instants) - 1)]


def test_handoff_keeps_local_time_where_elapsed_time_would_drift():
    """The Grafana OnCall bug (#3261, #5247): after the change, 24 elapsed hours would be 10:00 local."""
    schedule = Schedule("Europe/Berlin", (layer(DAY_SECONDS, "2026-03-28", "09:00", ("ann", "ben")),))
    berlin = zone("Europe/Berlin")
    shifts = final_schedule(schedule, Z("2026-03-28T00:00"), Z("2026-04-02T00:00"))
    assert {shift.start.astimezone(berlin).strftime("%H:%M") for shift in shifts[1:]} == {"09:00"}
    assert shifts[0].end - shifts[0].start == dt.timedelta(hours=23)  # the short day is a short shift


@pytest.mark.parametrize(("tz", "local", "expected"), [
    ("Europe/Berlin", "2026-03-29T02:30", "2026-03-29T01:00"),  # gap: 03:00 CEST
    ("Europe/Berlin", "2026-03-29T02:00", "2026-03-29T01:00"),  # gap start: the same jump
    ("Europe/Berlin", "2026-03-29T03:00", "2026-03-29T01:00"),
    ("Europe/Berlin", "2026-10-25T02:30", "2026-10-25T00:30"),  # ambiguous: first reading
    ("America/New_York", "2026-03-08T02:59", "2026-03-08T07:00"),
    ("Australia/Lord_Howe", "2026-10-04T02:15", "2026-10-03T15:30"),
    ("Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-04T14:45"),
    ("UTC", "2026-03-29T02:30", "2026-03-29T02:30"),
])
def test_local_to_instant_is_the_first_instant_the_clock_reads_that_time(tz, local, expected):
    assert local_to_instant(dt.datetime.fromisoformat(local), zone(tz)) == Z(expected)


# --- restrictions, layers, overrides ----------------------------------------------------------------

BUSINESS_HOURS = (Restriction(WEEKDAYS, dt.time(9), dt.time(17)),)


def _berlin_two_layers() -> Schedule:
    """Nights and weekends: a daily rotation from Monday 03-23 (night1 on odd days of it, night2 on even);
    weekdays 09-17: a weekly one on top (day1 the week of 03-23, day2 the week of 03-30)."""
    return Schedule("Europe/Berlin", (
        layer(DAY_SECONDS, "2026-03-23", "09:00", ("night1", "night2"), priority=0),
        layer(WEEK_SECONDS, "2026-03-23", "09:00", ("day1", "day2"), priority=1, restrictions=BUSINESS_HOURS),
    ))


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-03-27T07:59", "night2"),  # Fri 08:59 CET (before DST): weekday, before the window
    ("2026-03-27T08:00", "day1"),  # Fri 09:00 CET
    ("2026-03-27T15:59", "day1"),  # Fri 16:59 CET
    ("2026-03-27T16:00", "night1"),  # Fri 17:00 CET: the window closed
    ("2026-03-28T10:00", "night2"),  # Saturday: no window
    ("2026-03-30T06:59", "night1"),  # Mon 08:59 CEST (after DST): Sunday's night shift
    ("2026-03-30T07:00", "day2"),  # Mon 09:00 CEST: window and weekly handoff at local 09:00
    ("2026-03-30T14:59", "day2"),
    ("2026-03-30T15:00", "night2"),  # Mon 17:00 CEST: Monday's night shift
])
def test_restrictions_limit_when_a_layer_is_on_shift(at, expected):
    assert who_is_on_call(_berlin_two_layers(), Z(at)) == [expected]


def test_restriction_window_may_run_past_midnight():
    night = (Restriction(frozenset({4}), dt.time(22), dt.time(6)),)  # Friday 22:00 to Saturday 06:00
    schedule = Schedule("UTC", (layer(WEEK_SECONDS, "2026-03-02", "00:00", ("owl",), restrictions=night),))
    assert who_is_on_call(schedule, Z("2026-03-06T21:59")) == []
    assert who_is_on_call(schedule, Z("2026-03-06T22:00")) == ["owl"]
    assert who_is_on_call(schedule, Z("2026-03-07T05:59")) == ["owl"]
    assert who_is_on_call(schedule, Z("2026-03-07T06:00")) == []
    shifts = final_schedule(schedule, Z("2026-03-02T00:00"), Z("2026-03-16T00:00"))
    assert [(s.start, s.end) for s in shifts] == [(Z("2026-03-06T22:00"), Z("2026-03-07T06:00")),
                                                  (Z("2026-03-13T22:00"), Z("2026-03-14T06:00"))]


def test_final_schedule_with_restrictions_switches_layers_at_window_edges():
    shifts = final_schedule(_berlin_two_layers(), Z("2026-03-30T00:00"), Z("2026-03-31T00:00"))
    assert shifts == [
        Shift("night1", Z("2026-03-30T00:00"), Z("2026-03-30T07:00"), "layer:0"),
        Shift("day2", Z("2026-03-30T07:00"), Z("2026-03-30T15:00"), "layer:1"),
        Shift("night2", Z("2026-03-30T15:00"), Z("2026-03-31T00:00"), "layer:0"),
    ]


def test_higher_layer_wins_whatever_the_order_of_layers():
    low = layer(DAY_SECONDS, "2026-01-01", "09:00", ("low",), priority=1)
    high = layer(DAY_SECONDS, "2026-01-01", "09:00", ("high",), priority=5)
    for layers in ((low, high), (high, low)):
        assert who_is_on_call(Schedule("UTC", layers), Z("2026-02-01T12:00")) == ["high"]
        assert {s.user for s in final_schedule(Schedule("UTC", layers), Z("2026-02-01T00:00"),
                                               Z("2026-02-03T00:00"))} == {"high"}


def test_lower_layer_covers_until_the_higher_layer_starts():
    schedule = Schedule("UTC", (layer(DAY_SECONDS, "2026-01-01", "09:00", ("low",), priority=0),
                                layer(DAY_SECONDS, "2026-02-01", "09:00", ("high",), priority=1)))
    assert on_call_at(schedule, Z("2026-02-01T08:59")) == (["low"], "layer:0")
    assert on_call_at(schedule, Z("2026-02-01T09:00")) == (["high"], "layer:1")


def test_a_gap_in_the_rotation_falls_through_to_the_lower_layer_without_shifting_it():
    schedule = Schedule("UTC", (layer(DAY_SECONDS, "2026-01-01", "00:00", ("backup",), priority=0),
                                layer(DAY_SECONDS, "2026-01-01", "00:00", ("ann", None, "cat"), priority=1)))
    assert [who_is_on_call(schedule, Z(f"2026-01-0{day}T12:00")) for day in (1, 2, 3, 4)] == [
        ["ann"], ["backup"], ["cat"], ["ann"]]


def test_override_beats_every_layer_and_ends_exclusively():
    schedule = Schedule("Europe/Berlin", _berlin_two_layers().layers,
                        (Override("sub", Z("2026-03-30T10:00"), Z("2026-03-30T12:00")),))
    assert on_call_at(schedule, Z("2026-03-30T09:59")) == (["day2"], "layer:1")
    assert on_call_at(schedule, Z("2026-03-30T10:00")) == (["sub"], "override")
    assert on_call_at(schedule, Z("2026-03-30T12:00")) == (["day2"], "layer:1")
    shifts = final_schedule(schedule, Z("2026-03-30T07:00"), Z("2026-03-30T15:00"))
    assert [(s.user, s.source) for s in shifts] == [("day2", "layer:1"), ("sub", "override"), ("day2", "layer:1")]


def test_the_newer_of_two_overlapping_overrides_wins():
    schedule = Schedule("UTC", (), (Override("older", Z("2026-05-02T10:00"), Z("2026-05-02T14:00")),
                                    Override("newer", Z("2026-05-02T12:00"), Z("2026-05-02T18:00"))))
    assert who_is_on_call(schedule, Z("2026-05-02T11:00")) == ["older"]
    assert who_is_on_call(schedule, Z("2026-05-02T13:00")) == ["newer"]
    assert [(s.user, s.start, s.end) for s in final_schedule(schedule, Z("2026-05-02T00:00"), Z("2026-05-03T00:00"))] \
        == [("older", Z("2026-05-02T10:00"), Z("2026-05-02T12:00")),
            ("newer", Z("2026-05-02T12:00"), Z("2026-05-02T18:00"))]


def test_override_across_a_dst_change_covers_its_exact_instants():
    schedule = Schedule("America/New_York", (layer(DAY_SECONDS, "2026-10-30", "09:00", ("ann", "ben")),),
                        (Override("sub", Z("2026-11-01T04:00"), Z("2026-11-01T08:00")),))
    assert who_is_on_call(schedule, Z("2026-11-01T05:30")) == ["sub"]  # 01:30 EDT
    assert who_is_on_call(schedule, Z("2026-11-01T06:30")) == ["sub"]  # 01:30 EST, the repeat
    assert who_is_on_call(schedule, Z("2026-11-01T08:00")) == ["ben"]


def test_consecutive_shifts_of_one_person_are_merged():
    schedule = Schedule("UTC", (layer(DAY_SECONDS, "2026-01-01", "09:00", ("solo",)),))
    assert final_schedule(schedule, Z("2026-01-01T09:00"), Z("2026-01-08T09:00")) == [
        Shift("solo", Z("2026-01-01T09:00"), Z("2026-01-08T09:00"), "layer:0")]


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        who_is_on_call(Schedule("UTC"), dt.datetime(2026, 1, 1))


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize(("lo", "hi"), [("2026-03-05", "2026-03-12"), ("2026-03-26", "2026-04-08"),
                                        ("2026-09-30", "2026-10-07"), ("2026-10-22", "2026-11-04")])
def test_final_schedule_agrees_with_who_is_on_call_at_every_instant(tz, lo, hi):
    """Both answers come from one model of time: sample every 7 minutes around each zone's changes."""
    schedule = Schedule(tz, (
        layer(DAY_SECONDS, "2026-01-01", "02:30", ("a", "b", "c"), priority=0),
        layer(WEEK_SECONDS, "2026-01-04", "01:45", ("d", None), priority=1,
              restrictions=(Restriction(WEEKDAYS, dt.time(9), dt.time(17)),
                            Restriction(frozenset({6}), dt.time(23), dt.time(2, 15)))),
        layer(5 * 3600, "2026-01-01", "00:00", ("e", "f"), priority=2,
              restrictions=(Restriction(frozenset({5}), dt.time(2), dt.time(2)),)),
    ), (Override("o", Z(f"{lo}T20:00"), Z(f"{lo}T23:00")),))
    start, end = Z(f"{lo}T00:00"), Z(f"{hi}T00:00")
    shifts = final_schedule(schedule, start, end)
    assert shifts[0].start == start and shifts[-1].end == end
    assert all(a.end <= b.start for a, b in itertools.pairwise(shifts))
    at, index = start, 0
    while at < end:
        while shifts[index].end <= at:
            index += 1
        covering = [shifts[index].user] if shifts[index].start <= at else []
        assert who_is_on_call(schedule, at) == covering, at
        at += dt.timedelta(minutes=7)


# --- properties, in zones with unusual changes ----------------------------------------------------------

# (zone, a day with a change): 30-minute changes, changes at midnight, a skipped calendar day.
TRICKY = [("Australia/Lord_Howe", "2026-10-04"), ("Australia/Lord_Howe", "2026-04-05"),
          ("America/Santiago", "2026-09-06"), ("America/Santiago", "2026-04-05"),
          ("Pacific/Apia", "2011-12-30"), ("America/St_Johns", "2026-03-08"), ("Asia/Kathmandu", "1986-01-01"),
          ("Europe/Berlin", "2026-10-25"), ("America/New_York", "2026-03-08"), ("Pacific/Chatham", "2026-04-05")]
times = st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
restriction = st.builds(Restriction, st.frozensets(st.integers(0, 6), min_size=1), times, times)
tricky_layer = st.builds(
    Layer, priority=st.integers(0, 3),
    shift_seconds=st.sampled_from([900, 3600, 5 * 3600, 12 * 3600, DAY_SECONDS, 2 * DAY_SECONDS, WEEK_SECONDS]),
    start_date=st.sampled_from([dt.date(2011, 12, 20), dt.date(1985, 12, 25), dt.date(2026, 1, 5)]),
    handoff_time=times, members=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=4).map(tuple),
    restrictions=st.lists(restriction, max_size=2).map(tuple))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(TRICKY), layers=st.lists(tricky_layer, min_size=1, max_size=3),
       offsets=st.lists(st.integers(-3 * 86400, 3 * 86400), min_size=5, max_size=20))
def test_final_schedule_and_who_is_on_call_agree_in_tricky_zones(case, layers, offsets):
    tz_name, day = case
    middle = dt.datetime.fromisoformat(day).replace(hour=12, tzinfo=dt.UTC)
    schedule = Schedule(tz_name, tuple(layers))
    start, end = middle - dt.timedelta(days=3), middle + dt.timedelta(days=3)
    shifts = final_schedule(schedule, start, end)
    assert all(s.start < s.end for s in shifts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(shifts))
    probes = [middle + dt.timedelta(seconds=o) for o in offsets]
    probes += [p for s in shifts for p in (s.start, s.end - SECOND)]
    for at in (p for p in probes if start <= p < end):
        covering = [s.user for s in shifts if s.start <= at < s.end]
        assert who_is_on_call(schedule, at) == covering, at


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(TRICKY), minutes=st.integers(-36 * 60, 36 * 60))
def test_local_to_instant_is_the_first_instant_reading_that_time(case, minutes):
    tz_name, day = case
    tz = zone(tz_name)
    local = dt.datetime.fromisoformat(day) + dt.timedelta(minutes=minutes)
    instant = local_to_instant(local, tz)
    assert wall_clock(instant, tz) >= local
    assert wall_clock(instant - SECOND, tz) < local
    # ... and it never runs backwards as the local time goes forward.
    assert local_to_instant(local + dt.timedelta(minutes=1), tz) >= instant
