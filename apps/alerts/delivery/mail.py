"""Email transport through Django's mail framework (whatever EMAIL_BACKEND the deployment configures).

The Message-ID is derived from the notification's idempotency key, so a retry after a lost reply carries
the same id and mail clients and MTAs that de-duplicate by it show the message once."""

from __future__ import annotations

import smtplib
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from apps.alerts.delivery import render
from apps.alerts.delivery.http import timeout_seconds
from apps.alerts.delivery.result import DeliveryResult


def message_id(notification: Any) -> str:
    domain = urlsplit(settings.FIBERSTACK_BASE_URL).hostname or "fiberstack.local"
    return f"<notification-{notification.idempotency_key}@{domain}>"


def build(channel: Any, notification: Any, connection: Any = None) -> EmailMessage:
    payload = notification.payload
    return EmailMessage(
        subject=render.title(payload, notification.kind),
        body=render.text_body(payload, notification.kind),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[channel.address],
        headers={"Message-ID": message_id(notification), "X-FiberStack-Notification": notification.kind,
                 "Auto-Submitted": "auto-generated"},
        connection=connection,
    )


def _smtp_code(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return max(codes) if codes else None
    return getattr(exc, "smtp_code", None)


def send(channel: Any, notification: Any) -> DeliveryResult:
    """SMTP 4xx and network errors retry; 5xx (unknown mailbox, refused) fail at once."""
    if not channel.address:
        return DeliveryResult.fail(f"channel '{channel.name}' has no address")
    try:
        connection = get_connection(fail_silently=False, timeout=timeout_seconds())
        build(channel, notification, connection).send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        code = _smtp_code(exc)
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if code is not None and 500 <= code < 600:
            return DeliveryResult.fail(error, code)
        return DeliveryResult.retry(error, code)
    return DeliveryResult.delivered()
