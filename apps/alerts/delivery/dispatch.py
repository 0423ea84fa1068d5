"""Claim, send, record: one delivery attempt of one outbox notification, race-safe across workers.

Three steps, the network in the middle and outside any transaction:
1. claim (short transaction): the channel row is locked FOR NO KEY UPDATE so claims on one channel are
   serialised (exact rate limit), then compare-and-set pending/due (or sending with an expired claim) ->
   sending with ``claimed_until``; an "in progress" DeliveryAttempt row is written with it, so a worker that
   dies mid-send still leaves its try in the ledger.
2. send through the channel's transport (no transaction open).
3. finish (short transaction): fill the attempt row, then compare-and-set sending + *our* claimed_until ->
   delivered / pending (backoff) / failed. A worker whose claim expired and was taken over changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from apps.alerts.choices import ChannelKind, NotificationStatus
from apps.alerts.delivery import mail, slack, webhook
from apps.alerts.delivery.result import DeliveryResult
from apps.alerts.models import DeliveryAttempt, Notification, NotificationChannel

logger = logging.getLogger(__name__)

TRANSPORTS: dict[str, Callable[[Any, Any], DeliveryResult]] = {
    ChannelKind.WEBHOOK: webhook.send,
    ChannelKind.SLACK: slack.send,
    ChannelKind.EMAIL: mail.send,
}
IN_PROGRESS = "in progress"
ABANDONED = "abandoned: the worker's claim expired before it reported (crashed or hung); retried"
RATE_WINDOW = dt.timedelta(minutes=1)
#: How long to wait when the rate limit is taken by sends still in flight (their outcome frees the slot).
IN_FLIGHT_RECHECK_SECONDS = 5.0
#: The sweep leaves rows due for less than this to the deliver task already queued for them.
SWEEP_GRACE = dt.timedelta(seconds=5)
#: A row never tried is due this much before its next_attempt_at: the host that created it may run a few ms
#: ahead of the worker's clock, and a first attempt found "not due" would otherwise wait for the sweep (~15 s).
CLOCK_SKEW = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Step:
    """What a deliver call did (the task's summary) and, if set, in how many seconds to run it again."""

    summary: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Claim:
    notification: Notification
    channel: NotificationChannel
    attempt: DeliveryAttempt
    until: dt.datetime


def backoff_seconds(attempt: int, *, jitter: bool = True) -> float:
    """Wait after failed attempt ``attempt`` (1-based): min(cap, base * 2**(attempt-1)), minus up to 10 %."""
    base = float(settings.FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS)
    cap = float(settings.FIBERSTACK_NOTIFY_BACKOFF_CAP_SECONDS)
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay * random.uniform(0.9, 1.0) if jitter else delay


def _claimable(now: dt.datetime) -> Q:
    """Due and waiting, or claimed by a worker whose claim ran out (crashed or hung)."""
    return (Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=NotificationStatus.PENDING, attempts=0, next_attempt_at__lte=now + CLOCK_SKEW)
            | Q(status=NotificationStatus.SENDING, claimed_until__lt=now))


def rate_limit_wait(channel: NotificationChannel, now: dt.datetime) -> float:
    """Seconds until the channel may take another delivery (0 = now). Counts deliveries in the last minute
    (index alerts_notification_rate_idx) plus sends in flight; the caller holds the channel's row lock."""
    limit = channel.rate_limit_per_minute
    if not limit:
        return 0.0
    recent = list(Notification.objects.filter(channel_id=channel.pk, delivered_at__gt=now - RATE_WINDOW)
                  .order_by("delivered_at").values_list("delivered_at", flat=True)[:limit])
    in_flight = Notification.objects.filter(channel_id=channel.pk, status=NotificationStatus.SENDING,
                                            claimed_until__gte=now).count()
    if len(recent) + in_flight < limit:
        return 0.0
    if len(recent) >= limit:  # a slot frees when the oldest delivery of the window turns a minute old
        # At least 2 s: a shorter wait would still be "due" within CLOCK_SKEW and spin.
        return max((recent[0] + RATE_WINDOW - now).total_seconds(), 2.0)
    return IN_FLIGHT_RECHECK_SECONDS


def claim(notification_id: int, *, worker: str, now: dt.datetime | None = None) -> Claim | Step:
    now = now or timezone.now()
    with transaction.atomic():
        row = Notification.objects.filter(pk=notification_id).values("status", "channel_id").first()
        if row is None:
            return Step("skipped: notification no longer exists")
        if not Notification.objects.filter(pk=notification_id).filter(_claimable(now)).exists():
            return Step(f"skipped: {row['status']}, not due or claimed by another worker")
        # FOR NO KEY UPDATE: serialises claims per channel without blocking the lifecycle's inserts of
        # new notifications (their FK check takes FOR KEY SHARE, which this does not conflict with).
        channel = NotificationChannel.objects.select_for_update(no_key=True).get(pk=row["channel_id"])
        candidates = Notification.objects.filter(pk=notification_id).filter(_claimable(now))
        if not channel.enabled:
            done = candidates.update(status=NotificationStatus.FAILED, claimed_until=None, updated_at=now,
                                     last_error=f"channel '{channel.name}' is disabled; not sent")
            return Step("failed: channel disabled" if done else "skipped: claimed by another worker")
        wait = rate_limit_wait(channel, now)
        if wait:
            done = candidates.update(status=NotificationStatus.PENDING, claimed_until=None, updated_at=now,
                                     next_attempt_at=now + dt.timedelta(seconds=wait))
            return Step(f"rate limited: channel '{channel.name}' at {channel.rate_limit_per_minute}/min; "
                        f"next try in {wait:.1f} s", retry_in=wait if done else None)
        until = now + dt.timedelta(seconds=float(settings.FIBERSTACK_NOTIFY_CLAIM_SECONDS))
        if not candidates.update(status=NotificationStatus.SENDING, claimed_until=until, updated_at=now,
                                 attempts=F("attempts") + 1):
            return Step("skipped: claimed by another worker")
        # We own the row now; an "in progress" try left by an earlier owner is one whose worker died.
        DeliveryAttempt.objects.filter(notification_id=notification_id, ok=False, error=IN_PROGRESS).update(
            error=ABANDONED)
        last = DeliveryAttempt.objects.filter(notification_id=notification_id).aggregate(n=Max("number"))["n"]
        attempt = DeliveryAttempt.objects.create(notification_id=notification_id, number=(last or 0) + 1,
                                                 started_at=now, worker=worker[:200], error=IN_PROGRESS)
        notification = Notification.objects.get(pk=notification_id)
    return Claim(notification=notification, channel=channel, attempt=attempt, until=until)


def send(claimed: Claim) -> DeliveryResult:
    """The network part; a transport bug is reported as a retryable error, never left as a hanging claim."""
    transport = TRANSPORTS.get(claimed.channel.kind)
    if transport is None:
        return DeliveryResult.fail(f"unknown channel kind {claimed.channel.kind!r}")
    try:
        return transport(claimed.channel, claimed.notification)
    except Exception as exc:  # recorded in the ledger and retried with backoff
        logger.exception("notification %s: transport %s raised", claimed.notification.pk, claimed.channel.kind)
        return DeliveryResult.retry(f"internal error: {type(exc).__name__}: {exc}"[:1000])


def finish(claimed: Claim, result: DeliveryResult, *, duration_ms: int, now: dt.datetime | None = None) -> Step:
    now = now or timezone.now()
    attempts = claimed.notification.attempts
    max_attempts = int(settings.FIBERSTACK_NOTIFY_MAX_ATTEMPTS)
    retry_in: float | None = None
    if result.ok:
        changes: dict[str, Any] = {"status": NotificationStatus.DELIVERED, "delivered_at": now, "last_error": ""}
        summary = f"delivered on attempt {attempts}"
    elif result.retryable and attempts < max_attempts:
        retry_in = backoff_seconds(attempts)
        changes = {"status": NotificationStatus.PENDING, "last_error": result.error,
                   "next_attempt_at": now + dt.timedelta(seconds=retry_in)}
        summary = f"attempt {attempts} failed ({result.error[:120]}); retry in {retry_in:.1f} s"
    else:
        reason = result.error if not result.retryable else f"gave up after {attempts} attempts: {result.error}"
        changes = {"status": NotificationStatus.FAILED, "last_error": reason}
        summary = f"failed: {reason[:160]}"
    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=claimed.attempt.pk).update(
            duration_ms=duration_ms, ok=result.ok, response_status=result.status, error=result.error[:5000])
        mine = Notification.objects.filter(pk=claimed.notification.pk, status=NotificationStatus.SENDING,
                                           claimed_until=claimed.until)
        if mine.update(claimed_until=None, updated_at=now, **changes):
            return Step(summary, retry_in=retry_in)
        if result.ok:
            # Our claim ran out mid-send and another worker took the row over. It was delivered all the
            # same: record that unless the new owner is sending right now (it will record its own result).
            Notification.objects.filter(pk=claimed.notification.pk).exclude(
                status__in=[NotificationStatus.SENDING, NotificationStatus.SUPPRESSED]).update(
                status=NotificationStatus.DELIVERED, delivered_at=now, claimed_until=None, last_error="",
                updated_at=now)
    return Step(f"claim expired during the send ({'ok' if result.ok else result.error[:80]}); "
                "the row belongs to another worker now")


def deliver(notification_id: int, *, worker: str = "") -> Step:
    """One delivery attempt of one notification, if it is due and no other worker holds it."""
    claimed = claim(notification_id, worker=worker)
    if isinstance(claimed, Step):
        return claimed
    started = time.monotonic()
    result = send(claimed)
    return finish(claimed, result, duration_ms=int((time.monotonic() - started) * 1000))


def due_ids(*, limit: int, now: dt.datetime | None = None) -> list[int]:
    """Notifications the sweep should hand to workers: due for a while (the regular deliver task may be
    just queued) or claimed by a worker whose claim expired. Index: alerts_notification_due_idx."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING],
                                    next_attempt_at__lte=now - SWEEP_GRACE)
        .filter(Q(status=NotificationStatus.PENDING) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
