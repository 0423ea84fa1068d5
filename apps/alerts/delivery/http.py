"""One HTTP POST with the retry classification shared by the webhook and Slack transports.

httpx rather than urllib: per-phase timeouts (connect/write/read/pool) instead of one socket timeout,
non-2xx answers as values rather than exceptions, one exception family (httpx.TimeoutException,
httpx.TransportError) for "the network failed, try again", and redirects not followed unless asked
(a POST bounced elsewhere should be fixed in the channel, not silently re-sent to another host)."""

from __future__ import annotations

import httpx
from django.conf import settings

from apps.alerts.delivery.result import DeliveryResult

#: Answers worth another try: the receiver timed out, is rate limiting us, or is broken right now.
RETRY_STATUSES = frozenset({408, 425, 429})
_SNIPPET = 300


def timeout_seconds() -> float:
    return float(settings.FIBERSTACK_NOTIFY_TIMEOUT_SECONDS)


def post(url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
    """POST ``body``; 2xx delivered, 408/425/429/5xx and network errors retry, anything else fails now."""
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_seconds(),
                              follow_redirects=False)
    except httpx.TimeoutException as exc:
        return DeliveryResult.retry(f"timeout after {timeout_seconds():g} s ({type(exc).__name__})")
    except httpx.UnsupportedProtocol as exc:  # a TransportError, but retrying an ftp:// URL never helps
        return DeliveryResult.fail(f"unsupported URL: {exc}")
    except httpx.TransportError as exc:
        return DeliveryResult.retry(f"connection error: {type(exc).__name__}: {exc}"[:1000])
    except httpx.InvalidURL as exc:
        return DeliveryResult.fail(f"invalid URL: {exc}")
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult.delivered(status)
    snippet = response.text[:_SNIPPET].strip()
    error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in RETRY_STATUSES or status >= 500:
        return DeliveryResult.retry(error, status)
    if 300 <= status < 400:
        error += f" (redirect to {response.headers.get('location', '?')} not followed; fix the channel URL)"
    return DeliveryResult.fail(error, status)
