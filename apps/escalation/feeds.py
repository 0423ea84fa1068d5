"""Per-user calendar feeds: the signed token in the feed URL, and the feed's content (the user's final
shifts across the organization's schedules, from the same `final_schedule` as the API)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from django.core import signing
from django.utils import timezone

from apps.escalation import ical
from apps.escalation.models import CalendarFeed, OnCallSchedule
from apps.organizations.models import Membership

_SALT = "apps.escalation.calendar-feed"
#: The feed shows this much of the past (recent shifts stay visible) and of the future.
PAST = dt.timedelta(days=14)
FUTURE = dt.timedelta(days=90)


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT, sep=".")


def feed_token(feed: CalendarFeed) -> str:
    """The secret part of the feed URL: the feed's id signed with the server secret."""
    return _signer().sign(feed.public_id.hex)


def feed_path(feed: CalendarFeed) -> str:
    return f"/api/v1/schedules/ical/{feed_token(feed)}.ics"


def feed_for_token(token: str) -> CalendarFeed | None:
    """The active feed a token names, or None: bad signature, revoked, or its user no longer an active
    member of the organization (leaving the organization ends the feed without anyone revoking it)."""
    try:
        public_id = uuid.UUID(hex=_signer().unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    feed = (CalendarFeed.objects.select_related("organization", "user")
            .filter(public_id=public_id, revoked_at__isnull=True).first())
    if feed is None or not feed.user.is_active or not feed.organization.is_active:
        return None
    if not Membership.objects.filter(organization_id=feed.organization_id, user_id=feed.user_id).exists():
        return None
    return feed


def feed_events(feed: CalendarFeed, start: dt.datetime, end: dt.datetime) -> list[ical.Event]:
    """The feed user's shifts in [start, end), one event per continuous stretch per schedule (sources
    merged: a calendar shows being on call, not which layer put you there)."""
    events: list[ical.Event] = []
    for schedule in OnCallSchedule.objects.for_org(feed.organization_id).order_by("name"):
        stretches: list[list[Any]] = []
        for shift in schedule.final_schedule(start, end):
            if shift.user.pk != feed.user_id:
                continue
            if stretches and stretches[-1][1] == shift.start:
                stretches[-1][1] = shift.end
            else:
                stretches.append([shift.start, shift.end])
        for lo, hi in stretches:
            # Stable across fetches, so clients update an event instead of duplicating it.
            key = f"{schedule.public_id}:{feed.user_id}:{ical.utc(lo)}".encode()
            events.append(ical.Event(
                uid=f"{hashlib.sha256(key).hexdigest()[:32]}@fiberstack",
                start=lo, end=hi, summary=f"On call: {schedule.name}",
                description=f"{schedule.name} ({schedule.time_zone}), organization {feed.organization.name}"))
    return events


def render_feed(feed: CalendarFeed, now: dt.datetime | None = None) -> bytes:
    """The feed body from ``now - PAST`` to ``now + FUTURE``."""
    now = now or timezone.now()
    events = feed_events(feed, now - PAST, now + FUTURE)
    return ical.render_calendar(f"On call: {feed.user.get_username()} ({feed.organization.name})", events, now=now)
