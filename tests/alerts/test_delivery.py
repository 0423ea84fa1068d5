"""Notification delivery in-process (tasks run eagerly) against a real local HTTP receiver and a real
aiosmtpd SMTP server: bodies, signatures, retries, the attempt cap, rate limits, the sweep, the ledger."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
import json
import time
from email import policy
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.alerts.choices import ChannelKind, NotificationKind, NotificationStatus
from apps.alerts.delivery import dispatch, mail, slack, webhook
from apps.alerts.models import DeliveryAttempt, Notification
from apps.alerts.tasks.delivery import deliver_notification, sweep_notifications
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_delivery import (  # noqa: F401 (fixtures)
    HttpReceiver,
    NotificationFactory,
    SmtpServer,
    receiver_fixture,
    smtp_server_fixture,
    v4_payload,
)

pytestmark = pytest.mark.django_db
NO_WAIT = override_settings(FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS=0)


def _channel(org: Any, url: str, **kwargs: Any) -> Any:
    return NotificationChannelFactory(organization=org, url=url, **kwargs)


def _attempts(notification: Notification) -> list[DeliveryAttempt]:
    return list(notification.attempt_rows.order_by("number"))


def test_firing_and_resolved_webhooks_carry_the_v4_body_signed_with_the_channel_secret(
        org: Any, receiver: HttpReceiver) -> None:
    channel = _channel(org, receiver.url, headers={"Authorization": "Bearer abc", "Content-Type": "text/plain"})
    firing = NotificationFactory(organization=org, channel=channel, kind=NotificationKind.FIRING)
    resolved = NotificationFactory(organization=org, channel=channel, kind=NotificationKind.RESOLVED)

    for notification in (firing, resolved):
        deliver_notification.delay(notification.pk)

    assert len(receiver.requests) == 2
    for notification, request in zip((firing, resolved), receiver.requests, strict=True):
        notification.refresh_from_db()
        assert request.json() == notification.payload
        assert request.body == json.dumps(notification.payload, separators=(",", ":")).encode()
        expected = hmac.new(channel.signing_secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-FiberStack-Signature"] == f"sha256={expected}"
        assert abs(int(request.headers["X-FiberStack-Timestamp"]) - time.time()) < 30
        assert request.headers["Idempotency-Key"] == str(notification.idempotency_key)
        assert request.headers["Content-Type"] == "application/json"  # a channel header cannot override it
        assert request.headers["Authorization"] == "Bearer abc"
        assert notification.status == NotificationStatus.DELIVERED and notification.delivered_at is not None
        [attempt] = _attempts(notification)
        assert (attempt.number, attempt.ok, attempt.response_status, attempt.error) == (1, True, 200, "")
        assert attempt.worker
    assert [r.json()["status"] for r in receiver.requests] == ["firing", "resolved"]
    assert receiver.requests[1].json()["alerts"][0]["endsAt"] == "2026-12-04T20:05:00Z"


@NO_WAIT
def test_two_500s_then_200_is_three_attempts_in_the_ledger_and_one_delivery(org: Any, receiver: HttpReceiver) -> None:
    receiver.script = [500, 500, 200]
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url))

    deliver_notification.delay(notification.pk)

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.DELIVERED and notification.attempts == 3
    assert [(a.number, a.ok, a.response_status) for a in _attempts(notification)] == [
        (1, False, 500), (2, False, 500), (3, True, 200)]
    assert "HTTP 500" in _attempts(notification)[0].error
    assert receiver.keys() == [str(notification.idempotency_key)] * 3


@override_settings(FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS=5)
def test_a_retryable_failure_waits_out_the_backoff(org: Any, receiver: HttpReceiver) -> None:
    receiver.script = [503]
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url))
    before = timezone.now()

    deliver_notification.delay(notification.pk)  # the eager re-schedule finds it not due yet
    sweep_notifications.delay()

    notification.refresh_from_db()
    assert len(receiver.requests) == 1
    assert notification.status == NotificationStatus.PENDING and notification.attempts == 1
    assert notification.last_error.startswith("HTTP 503")
    wait = (notification.next_attempt_at - before).total_seconds()
    assert 4.4 <= wait <= 5.5


def test_a_400_fails_at_once_without_retry(org: Any, receiver: HttpReceiver) -> None:
    receiver.script = [400]
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url))

    deliver_notification.delay(notification.pk)
    sweep_notifications.delay()

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED and notification.attempts == 1
    assert notification.last_error.startswith("HTTP 400")
    assert len(receiver.requests) == 1 and len(_attempts(notification)) == 1


@NO_WAIT
@override_settings(FIBERSTACK_NOTIFY_TIMEOUT_SECONDS=0.3)
def test_a_timeout_is_retried(org: Any, receiver: HttpReceiver) -> None:
    receiver.script = [(200, 1.5), 200]
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url))

    deliver_notification.delay(notification.pk)

    notification.refresh_from_db()
    first, second = _attempts(notification)
    assert first.error.startswith("timeout after 0.3 s") and first.response_status is None
    assert second.ok and notification.status == NotificationStatus.DELIVERED
    assert receiver.keys() == [str(notification.idempotency_key)] * 2


@NO_WAIT
@override_settings(FIBERSTACK_NOTIFY_MAX_ATTEMPTS=3)
def test_connection_errors_retry_up_to_the_cap_then_fail(org: Any) -> None:
    notification = NotificationFactory(organization=org, channel=_channel(org, "http://127.0.0.1:9/hook"))

    deliver_notification.delay(notification.pk)

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED and notification.attempts == 3
    assert notification.last_error.startswith("gave up after 3 attempts: connection error")
    assert [a.ok for a in _attempts(notification)] == [False, False, False]


def test_a_redirect_is_not_followed(org: Any, receiver: HttpReceiver) -> None:
    receiver.script = [301]
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url))
    deliver_notification.delay(notification.pk)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED and "not followed" in notification.last_error


def test_suppressed_notifications_are_never_sent(org: Any, receiver: HttpReceiver) -> None:
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url),
                                       status=NotificationStatus.SUPPRESSED, suppressed_reason="silence",
                                       next_attempt_at=timezone.now() - dt.timedelta(minutes=1))

    deliver_notification.delay(notification.pk)
    sweep_notifications.delay()

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SUPPRESSED and notification.attempts == 0
    assert receiver.requests == [] and _attempts(notification) == []


def test_a_disabled_channel_fails_its_notifications_with_a_clear_error(org: Any, receiver: HttpReceiver) -> None:
    channel = _channel(org, receiver.url, name="ops-hook", enabled=False)
    notification = NotificationFactory(organization=org, channel=channel)

    deliver_notification.delay(notification.pk)

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED
    assert notification.last_error == "channel 'ops-hook' is disabled; not sent"
    assert receiver.requests == []


def test_the_rate_limit_reschedules_instead_of_dropping(org: Any, receiver: HttpReceiver) -> None:
    channel = _channel(org, receiver.url, rate_limit_per_minute=2)
    notifications = NotificationFactory.create_batch(4, organization=org, channel=channel)

    for notification in notifications:
        deliver_notification.delay(notification.pk)
    sweep_notifications.delay()

    assert len(receiver.requests) == 2
    rows = Notification.objects.filter(channel=channel)
    first_delivery = min(n.delivered_at for n in rows if n.delivered_at)
    waiting = rows.filter(status=NotificationStatus.PENDING)
    assert waiting.count() == 2 and all(n.attempts == 0 for n in waiting)
    for row in waiting:
        assert abs((row.next_attempt_at - (first_delivery + dt.timedelta(minutes=1))).total_seconds()) < 1

    # A minute later the window has room again: the sweep sends the two that waited.
    minute = dt.timedelta(seconds=70)  # past the sweep's grace too
    for row in rows:
        Notification.objects.filter(pk=row.pk).update(
            delivered_at=row.delivered_at - minute if row.delivered_at else None,
            next_attempt_at=row.next_attempt_at - minute)
    sweep_notifications.delay()

    assert len(receiver.requests) == 4
    assert set(rows.values_list("status", flat=True)) == {NotificationStatus.DELIVERED}


def test_a_rate_limit_of_zero_means_unlimited(org: Any, receiver: HttpReceiver) -> None:
    channel = _channel(org, receiver.url, rate_limit_per_minute=0)
    for notification in NotificationFactory.create_batch(5, organization=org, channel=channel):
        deliver_notification.delay(notification.pk)
    assert len(receiver.requests) == 5


def test_the_sweep_takes_over_an_expired_claim_and_leaves_a_live_one(org: Any, receiver: HttpReceiver) -> None:
    channel = _channel(org, receiver.url)
    now = timezone.now()
    crashed = NotificationFactory(organization=org, channel=channel, status=NotificationStatus.SENDING, attempts=1,
                                  next_attempt_at=now - dt.timedelta(minutes=2),
                                  claimed_until=now - dt.timedelta(seconds=1))
    DeliveryAttempt.objects.create(notification=crashed, number=1, started_at=now - dt.timedelta(minutes=2),
                                   worker="dead@host:1", error=dispatch.IN_PROGRESS)
    busy = NotificationFactory(organization=org, channel=channel, status=NotificationStatus.SENDING, attempts=1,
                               next_attempt_at=now - dt.timedelta(minutes=2),
                               claimed_until=now + dt.timedelta(minutes=1))
    lost = NotificationFactory(organization=org, channel=channel, next_attempt_at=now - dt.timedelta(minutes=1))
    later = NotificationFactory(organization=org, channel=channel, next_attempt_at=now + dt.timedelta(minutes=1))

    summary = sweep_notifications.delay().get()

    assert summary == "2 notifications handed to deliver tasks"
    assert sorted(receiver.keys()) == sorted([str(crashed.idempotency_key), str(lost.idempotency_key)])
    crashed.refresh_from_db()
    assert crashed.status == NotificationStatus.DELIVERED and crashed.attempts == 2
    assert [(a.number, a.ok, a.error) for a in _attempts(crashed)] == [(1, False, dispatch.ABANDONED), (2, True, "")]
    assert Notification.objects.get(pk=busy.pk).status == NotificationStatus.SENDING
    assert Notification.objects.get(pk=later.pk).status == NotificationStatus.PENDING


def test_a_first_attempt_stamped_by_a_clock_slightly_ahead_is_sent_at_once_a_retry_waits(
        org: Any, receiver: HttpReceiver) -> None:
    ahead = NotificationFactory(organization=org, channel=_channel(org, receiver.url),
                                next_attempt_at=timezone.now() + dt.timedelta(milliseconds=500))
    later = NotificationFactory(organization=org, channel=ahead.channel,
                                next_attempt_at=timezone.now() + dt.timedelta(seconds=3))
    backing_off = NotificationFactory(organization=org, channel=ahead.channel, attempts=1,
                                      next_attempt_at=timezone.now() + dt.timedelta(milliseconds=500))
    for notification in (ahead, later, backing_off):
        deliver_notification.delay(notification.pk)
    assert receiver.keys() == [str(ahead.idempotency_key)]


def test_a_deliver_task_for_a_delivered_notification_sends_nothing(org: Any, receiver: HttpReceiver) -> None:
    notification = NotificationFactory(organization=org, channel=_channel(org, receiver.url))
    deliver_notification.delay(notification.pk)
    summary = deliver_notification.delay(notification.pk).get()
    assert "skipped: delivered" in summary and len(receiver.requests) == 1


def test_slack_gets_a_readable_message(org: Any, receiver: HttpReceiver) -> None:
    channel = _channel(org, receiver.url, kind=ChannelKind.SLACK)
    payload = v4_payload("firing", names=("HighCPU",), hosts=("web-1", "web-2"))
    notification = NotificationFactory(organization=org, channel=channel, payload=payload)

    deliver_notification.delay(notification.pk)

    [request] = receiver.requests
    body = request.json()
    assert request.headers["Content-Type"] == "application/json"
    assert body["text"] == "[FIRING:2] HighCPU (env=prod): HighCPU on web-1: 97.5 > 90"
    assert [b["type"] for b in body["blocks"]] == ["section", "context", "divider", "section", "section"]
    assert body["blocks"][0]["text"]["text"] == "*:rotating_light: [FIRING:2] HighCPU (env=prod)*"
    context = body["blocks"][1]["elements"][0]["text"]
    assert "Severity: *critical*" in context and "View in FiberStack>" in context
    first_alert = body["blocks"][3]["text"]["text"]
    assert first_alert.startswith("*HighCPU* — FIRING · severity *critical*")
    assert "HighCPU on web-1: 97.5 > 90" in first_alert and "`env=prod, host=web-1`" in first_alert
    assert Notification.objects.get(pk=notification.pk).status == NotificationStatus.DELIVERED


def test_slack_summarises_past_ten_alerts_and_says_resolved() -> None:
    payload = v4_payload("resolved", names=("Disk",), hosts=tuple(f"db-{i}" for i in range(12)))
    message = slack.message(payload, "resolved")
    assert message["text"].startswith("[RESOLVED] Disk (env=prod)")
    assert len(message["blocks"]) == 3 + slack.MAX_ALERT_BLOCKS + 1
    assert message["blocks"][-1]["elements"][0]["text"] == "… and 2 more alerts"


def _smtp(server: SmtpServer) -> Any:
    return override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST=server.host,
                             EMAIL_PORT=server.port, EMAIL_USE_TLS=False, EMAIL_HOST_USER="",
                             EMAIL_HOST_PASSWORD="")


def test_email_goes_through_a_real_smtp_server_with_subject_body_and_stable_message_id(
        org: Any, smtp_server: SmtpServer) -> None:
    channel = NotificationChannelFactory(organization=org, kind=ChannelKind.EMAIL, url="", address="ops@example.com")
    firing = NotificationFactory(organization=org, channel=channel,
                                 payload=v4_payload("firing", hosts=("web-1", "web-2")))
    resolved = NotificationFactory(organization=org, channel=channel, kind=NotificationKind.RESOLVED)

    with _smtp(smtp_server):
        deliver_notification.delay(firing.pk)
        deliver_notification.delay(resolved.pk)

    first, second = smtp_server.inbox.messages
    assert first.rcpt_tos == ["ops@example.com"]
    message = email.message_from_bytes(first.original_content, policy=policy.default)
    assert message["Subject"] == "[FIRING:2] HighCPU (env=prod)"
    assert message["Message-ID"] == mail.message_id(firing) == f"<notification-{firing.idempotency_key}@127.0.0.1>"
    body = message.get_content()
    assert "Severity: critical" in body and "Summary: HighCPU on web-2: 97.5 > 90" in body
    assert "Labels: alertname=HighCPU, env=prod, host=web-1, severity=critical" in body
    resolved_message = email.message_from_bytes(second.original_content, policy=policy.default)
    assert resolved_message["Subject"] == "[RESOLVED] HighCPU (env=prod, host=web-1)"
    assert "Ended: 2026-12-04T20:05:00Z" in resolved_message.get_content()
    assert set(Notification.objects.values_list("status", flat=True)) == {NotificationStatus.DELIVERED}


@NO_WAIT
def test_an_smtp_4xx_is_retried_with_the_same_message_id_and_a_5xx_fails(org: Any, smtp_server: SmtpServer) -> None:
    channel = NotificationChannelFactory(organization=org, kind=ChannelKind.EMAIL, url="", address="ops@example.com")
    notification = NotificationFactory(organization=org, channel=channel)
    smtp_server.inbox.replies = ["451 4.3.0 try again later", "250 OK"]
    with _smtp(smtp_server):
        deliver_notification.delay(notification.pk)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.DELIVERED
    assert [(a.ok, a.response_status) for a in _attempts(notification)] == [(False, 451), (True, None)]
    ids = [email.message_from_bytes(m.original_content)["Message-ID"] for m in smtp_server.inbox.messages]
    assert ids == [mail.message_id(notification)] * 2

    refused = NotificationFactory(organization=org, channel=channel)
    smtp_server.inbox.replies = ["554 5.7.1 rejected"]
    with _smtp(smtp_server):
        deliver_notification.delay(refused.pk)
    refused.refresh_from_db()
    assert refused.status == NotificationStatus.FAILED and refused.attempts == 1 and "554" in refused.last_error


def test_backoff_doubles_up_to_the_cap() -> None:
    with override_settings(FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS=5, FIBERSTACK_NOTIFY_BACKOFF_CAP_SECONDS=60):
        assert [dispatch.backoff_seconds(n, jitter=False) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
        assert all(4.5 <= dispatch.backoff_seconds(1) <= 5 for _ in range(50))


def test_the_signature_helper_matches_a_receivers_check() -> None:
    body = webhook.encode({"status": "firing", "alerts": [{"labels": {"a": "ü"}}]})
    assert body == '{"status":"firing","alerts":[{"labels":{"a":"ü"}}]}'.encode()
    assert webhook.sign("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
