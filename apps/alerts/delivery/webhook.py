"""Webhook transport: the Alertmanager webhook v4 body as built by the lifecycle, signed with HMAC-SHA256.

Receivers verify ``X-FiberStack-Signature: sha256=<hex>`` = HMAC-SHA256(channel signing secret, raw body)
and drop repeats by ``Idempotency-Key`` (the notification's key, the same on every retry)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from apps.alerts.delivery.http import post
from apps.alerts.delivery.result import DeliveryResult

SIGNATURE_HEADER = "X-FiberStack-Signature"
TIMESTAMP_HEADER = "X-FiberStack-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the bytes that are signed are exactly the bytes that are sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(channel: Any, notification: Any, body: bytes) -> dict[str, str]:
    """The channel's extra headers first, ours last: a configured header cannot overwrite the signature,
    the content type or the idempotency key."""
    headers = {str(k): str(v) for k, v in (channel.headers or {}).items()}
    headers.update({
        "Content-Type": "application/json",
        "User-Agent": "FiberStack-Alerts/1",
        SIGNATURE_HEADER: sign(channel.signing_secret, body),
        TIMESTAMP_HEADER: str(int(time.time())),
        IDEMPOTENCY_HEADER: str(notification.idempotency_key),
    })
    return headers


def send(channel: Any, notification: Any) -> DeliveryResult:
    if not channel.url:
        return DeliveryResult.fail(f"channel '{channel.name}' has no URL")
    body = encode(notification.payload)
    return post(channel.url, body, headers_for(channel, notification, body))
