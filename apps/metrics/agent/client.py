"""The agent's push client: a bounded buffer of request bodies, sent oldest first, with backoff.

Why a buffer: the server may be down for a deploy or a network blip; the agent keeps collecting and
sends what it missed when the server is back, so graphs have no hole. Why bounded: an agent must never
eat the memory of the machine it watches; past ``max_batches`` the oldest batch is dropped (and logged),
because recent data is worth more than old data to an on-call engineer.

What is retried: connection errors, timeouts, 5xx, 408 and 429 (honouring ``Retry-After``); a retry
whose first attempt was in fact stored is harmless (the server keeps one sample per series and
timestamp). A 4xx is the client's fault and retrying it would fail forever (a partial write answered
with 400 has already stored its good lines), so the batch is logged with the server's reply and dropped.

The transport is injectable (:class:`Transport`): the default uses ``urllib`` with no third-party
dependency; tests post through Django's test client instead of a socket.
"""

from __future__ import annotations

import collections
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from apps.metrics.agent import USER_AGENT

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCHES = 500
DEFAULT_TIMEOUT_S = 10.0
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(slots=True)
class Batch:
    """One request waiting to be sent: path (with query string) under the server URL, body, content type."""

    path: str
    body: bytes
    content_type: str
    description: str = ""
    attempts: int = field(default=0)


class Response(NamedTuple):
    status: int
    body: bytes
    headers: Mapping[str, str]


class Transport(Protocol):
    """Sends one POST. Returns the response for every HTTP status; raises OSError when nothing answered."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response: ...


class UrllibTransport:
    """The default transport: stdlib urllib, one connection per request (an agent sends a few per interval)."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the configured server
                return Response(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read() or b"", dict(exc.headers or {}))


class PushClient:
    """Queues batches and sends them in order; :meth:`flush` stops at the first retryable failure."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: Transport | None = None,
        max_batches: int = DEFAULT_MAX_BATCHES,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.transport: Transport = transport or UrllibTransport()
        self.max_batches = max_batches
        self.timeout = timeout
        self.clock = clock
        self.buffer: collections.deque[Batch] = collections.deque()
        self.dropped = 0  # batches dropped because the buffer was full
        self.rejected = 0  # batches the server refused with a 4xx (dropped: retrying cannot help)
        self.sent = 0
        self.failures = 0  # consecutive retryable failures; drives the backoff
        self.retry_at = 0.0  # monotonic time before which flush() does not try

    def submit(self, batch: Batch) -> None:
        """Queue a batch; beyond the bound the oldest one is dropped with a log line."""
        self.buffer.append(batch)
        while len(self.buffer) > self.max_batches:
            old = self.buffer.popleft()
            self.dropped += 1
            logger.warning("push buffer full (%d batches): dropped the oldest batch (%s, %d bytes)",
                           self.max_batches, old.description or old.path, len(old.body))

    @property
    def pending(self) -> int:
        return len(self.buffer)

    def backing_off(self) -> bool:
        return self.clock() < self.retry_at

    def flush(self) -> bool:
        """Send queued batches oldest first. True when the buffer is empty afterwards.

        Returns early (False) while backing off, or at the first retryable failure, which schedules the
        next attempt after an exponential backoff with jitter (1 s, 2 s, 4 s … capped at 60 s).
        """
        if self.backing_off():
            return False
        while self.buffer:
            batch = self.buffer[0]
            batch.attempts += 1
            try:
                response = self.transport.post(self.base_url + batch.path, batch.body, self._headers(batch),
                                               self.timeout)
            except OSError as exc:
                self._back_off(batch, f"{type(exc).__name__}: {exc}", None)
                return False
            if 200 <= response.status < 300:
                self.buffer.popleft()
                self.sent += 1
                if self.failures:
                    logger.info("server reachable again; %d batches still queued", len(self.buffer))
                self.failures = 0
                continue
            if response.status >= 500 or response.status in RETRYABLE_STATUSES:
                self._back_off(batch, f"HTTP {response.status}: {_snippet(response.body)}",
                               _retry_after(response.headers))
                return False
            self.buffer.popleft()
            self.rejected += 1
            logger.error("server refused %s with HTTP %d; dropped it (retrying cannot help): %s",
                         batch.description or batch.path, response.status, _snippet(response.body))
        return True

    def _headers(self, batch: Batch) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": batch.content_type,
            "User-Agent": USER_AGENT,
        }

    def _back_off(self, batch: Batch, reason: str, retry_after: float | None) -> None:
        self.failures += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (self.failures - 1))
        delay = delay * random.uniform(0.8, 1.2)  # agents restarted together must not retry together
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.retry_at = self.clock() + delay
        logger.warning("push of %s failed (%s); %d batches queued, retrying in %.1f s",
                       batch.description or batch.path, reason, len(self.buffer), delay)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "…"
