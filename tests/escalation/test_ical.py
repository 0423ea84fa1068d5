"""The iCalendar writer (checked by a strict RFC 5545 reader, itself tested on invalid input) and the
per-user feed: a signed, revocable URL that needs no session and lists only that user's final shifts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.escalation import ical, services
from apps.escalation.feeds import feed_events, feed_path
from apps.escalation.models import CalendarFeed
from apps.organizations.models import Membership
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory
from tests.escalation.ical_parser import ICalendarError, events, parse_calendar, parse_text

NOW = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)


def Z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


VALID = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\nUID:1\r\n"
         b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nDTEND:20260101T010000Z\r\n"
         b"SUMMARY:ok\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_the_strict_reader_accepts_a_minimal_valid_calendar():
    assert events(parse_calendar(VALID)) == [(Z("2026-01-01T00:00"), Z("2026-01-01T01:00"), "ok")]


@pytest.mark.parametrize(("old", "new"), [
    (b"\r\n", b"\n"),  # LF line ends
    (b"SUMMARY:ok", b"SUMMARY:" + b"x" * 80),  # unfolded long line
    (b"SUMMARY:ok", b"SUMMARY:a,b"),  # unescaped comma in TEXT
    (b"SUMMARY:ok", b"SUMMARY:a\\xb"),  # bad escape
    (b"UID:1\r\n", b""),  # no UID
    (b"DTSTART:20260101T000000Z", b"DTSTART:20260101T000000"),  # floating time
    (b"DTSTART:20260101T000000Z", b"DTSTART:20260230T000000Z"),  # impossible date
    (b"DTEND:20260101T010000Z", b"DTEND:20251231T000000Z"),  # ends before it starts
    (b"END:VEVENT\r\n", b""),  # unbalanced
    (b"VERSION:2.0", b"VERSION:1.0"),
])
def test_the_strict_reader_refuses_invalid_calendars(old, new):
    with pytest.raises(ICalendarError):
        parse_calendar(VALID.replace(old, new, 1) if old != b"\r\n" else VALID.replace(old, new))


def test_text_is_escaped_and_long_lines_fold_without_splitting_characters():
    name = 'Ops; "Tier 1", back\\slash\nnext line ' + "Grüße 🚨 " * 20
    body = ical.render_calendar(name, [ical.Event(uid="u1@x", start=Z("2026-03-29T01:00"), end=Z("2026-03-29T07:00"),
                                                  summary=name, description="a,b;c")], now=NOW)
    calendar = parse_calendar(body)
    assert calendar.one("X-WR-CALNAME") == name
    event = calendar.components[0]
    assert (event.one("SUMMARY"), event.one("DESCRIPTION")) == (name, "a,b;c")
    assert event.one("DTSTAMP") == "20260320T120000Z"
    assert events(calendar) == [(Z("2026-03-29T01:00"), Z("2026-03-29T07:00"), name)]
    assert max(len(line) for line in body.split(b"\r\n")) <= 75
    assert any(line.startswith(b" ") for line in body.split(b"\r\n"))  # it did fold


@pytest.mark.parametrize("text", ["", "a", "é" * 100, "x" * 74 + "é" * 3, "🚨" * 40])
def test_fold_keeps_every_line_within_75_octets_and_unfolds_to_the_original(text):
    folded = ical.fold(f"SUMMARY:{text}")
    assert all(len(line.encode()) <= 75 for line in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == f"SUMMARY:{text}"


def test_parse_text_round_trips_escape_text():
    assert parse_text(ical.escape_text("a\\b;c,d\r\ne")) == "a\\b;c,d\ne"


# --- the feed ---------------------------------------------------------------------------------------


@pytest.fixture
def berlin_schedule(org, owner, editor):
    """Daily 09:00 Berlin handoffs from 2026-03-20, alternating alice and erin."""
    schedule = OnCallScheduleFactory(organization=org, name="Primary, Berlin", time_zone="Europe/Berlin")
    ScheduleLayerFactory(schedule=schedule, priority=0, start_date=dt.date(2026, 3, 20), users=[owner, editor])
    return schedule


@pytest.mark.django_db
def test_feed_lists_only_the_users_final_shifts_across_schedules(org, owner, editor, berlin_schedule):
    second = OnCallScheduleFactory(organization=org, name="Database", time_zone="UTC")
    ScheduleLayerFactory(schedule=second, priority=0, start_date=dt.date(2026, 3, 30), users=[owner])
    services.create_override(schedule=berlin_schedule, user=owner, start=Z("2026-03-21T12:00"),
                             end=Z("2026-03-21T14:00"), actor=owner)
    feed = services.create_calendar_feed(organization=org, user=owner, actor=owner)
    found = [(e.start, e.end, e.summary) for e in feed_events(feed, Z("2026-03-20T00:00"), Z("2026-04-01T00:00"))]
    assert found == [  # schedules by name; erin's days and the other user's shifts are absent
        (Z("2026-03-30T09:00"), Z("2026-04-01T00:00"), "On call: Database"),
        (Z("2026-03-20T08:00"), Z("2026-03-21T08:00"), "On call: Primary, Berlin"),
        (Z("2026-03-21T12:00"), Z("2026-03-21T14:00"), "On call: Primary, Berlin"),  # erin's day, overridden
        (Z("2026-03-22T08:00"), Z("2026-03-23T08:00"), "On call: Primary, Berlin"),
        (Z("2026-03-24T08:00"), Z("2026-03-25T08:00"), "On call: Primary, Berlin"),
        (Z("2026-03-26T08:00"), Z("2026-03-27T08:00"), "On call: Primary, Berlin"),
        (Z("2026-03-28T08:00"), Z("2026-03-29T07:00"), "On call: Primary, Berlin"),  # 09:00 CET to 09:00 CEST
        (Z("2026-03-30T07:00"), Z("2026-03-31T07:00"), "On call: Primary, Berlin"),
    ]


@pytest.mark.django_db
def test_feed_url_works_without_a_session_and_is_valid_icalendar(api_client, org, owner, berlin_schedule):
    created = api_client(user=owner).post("/api/v1/schedules/calendar-feeds", {}, format="json")
    assert created.status_code == 201, created.json()
    url = created.json()["url"]
    assert url.startswith("http://testserver/api/v1/schedules/ical/") and url.endswith(".ics")
    response = api_client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = parse_calendar(response.content)
    shifts = berlin_schedule.final_schedule(timezone.now() - dt.timedelta(days=14),
                                            timezone.now() + dt.timedelta(days=90))
    mine = [(s.start, s.end) for s in shifts if s.user == owner]
    got = [(start, end) for start, end, _ in events(calendar)]
    assert len(got) == len(mine) > 10
    # The first and the last shift are cut at "now - 14 days" and "now + 90 days" of the feed's own moment,
    # a little before ours: the last one differed whenever a shift of the owner spans now + 90 days.
    assert got[1:-1] == mine[1:-1]
    assert got[-1][0] == mine[-1][0] and abs(got[-1][1] - mine[-1][1]) < dt.timedelta(seconds=5)
    assert {summary for _, _, summary in events(calendar)} == {"On call: Primary, Berlin"}
    assert CalendarFeed.objects.get().last_fetched_at is not None
    assert api_client().head(url).status_code == 200  # some calendar clients check first
    assert api_client().post(url).status_code == 405


@pytest.mark.django_db
def test_revoked_tampered_or_orphaned_feed_urls_are_404(api_client, org, owner, editor, berlin_schedule):
    feed = services.create_calendar_feed(organization=org, user=owner, actor=owner)
    path = feed_path(feed)
    client = api_client()
    assert client.get(path).status_code == 200
    token = path.removeprefix("/api/v1/schedules/ical/").removesuffix(".ics")
    public_hex, signature = token.split(".")
    forged = f"{public_hex[:-1]}{'0' if public_hex[-1] != '0' else '1'}.{signature}"
    assert client.get(f"/api/v1/schedules/ical/{forged}.ics").status_code == 404
    assert client.get(f"/api/v1/schedules/ical/{public_hex}.ics").status_code == 404  # unsigned
    assert client.get(f"/api/v1/schedules/ical/{public_hex}.AAAA.ics").status_code == 404

    replacement = services.create_calendar_feed(organization=org, user=owner, actor=owner)  # resets the link
    assert client.get(path).status_code == 404
    assert client.get(feed_path(replacement)).status_code == 200

    erin_feed = services.create_calendar_feed(organization=org, user=editor, actor=editor)
    Membership.objects.filter(user=editor).delete()  # left the organization: the feed dies with it
    assert client.get(feed_path(erin_feed)).status_code == 404


@pytest.mark.django_db
def test_calendar_feed_endpoints_are_per_user_and_session_only(api_client, org, owner, editor, read_token,
                                                                other_org_user):
    mine = services.create_calendar_feed(organization=org, user=owner, actor=owner)
    theirs = services.create_calendar_feed(organization=org, user=editor, actor=editor)
    client = api_client(user=owner)
    assert [f["id"] for f in client.get("/api/v1/schedules/calendar-feeds").json()["results"]] == [str(mine.public_id)]
    assert client.delete(f"/api/v1/schedules/calendar-feeds/{theirs.public_id}").status_code == 404
    assert api_client(token=read_token).get("/api/v1/schedules/calendar-feeds").status_code == 403
    assert api_client(token=read_token).post("/api/v1/schedules/calendar-feeds", {}).status_code == 403
    assert api_client(user=other_org_user).delete(
        f"/api/v1/schedules/calendar-feeds/{mine.public_id}").status_code == 404
    assert client.delete(f"/api/v1/schedules/calendar-feeds/{mine.public_id}").status_code == 204
    assert api_client().get(feed_path(mine)).status_code == 404
    assert AuditEvent.objects.filter(action="schedule.calendar_feed_revoked", actor_user=owner).count() == 1
