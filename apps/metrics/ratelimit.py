"""Per-token ingest rate limits in Redis: a fixed one-second window counting requests and samples.

Fixed windows are one INCR per request and need no clock agreement between web processes; the price
(up to twice the rate across a window edge) is acceptable for protecting the database from a runaway
agent. Limits come from settings (0 disables a limit):

* ``FIBERSTACK_INGEST_RATE_REQUESTS`` (default 200 requests per second per token);
* ``FIBERSTACK_INGEST_RATE_SAMPLES`` (default 2,000,000 samples per second per token);
* ``FIBERSTACK_INGEST_RATE_WINDOW`` (seconds, default 1).

When Redis is unavailable every request is allowed and a warning is logged (at most once a minute):
losing data because the limiter is down would be worse than a burst of writes."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings

from apps.core import redis

logger = logging.getLogger(__name__)
_last_warning = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit_name: str = ""
    limit: int = 0
    retry_after: int = 0


ALLOW = Verdict(True)


def _window() -> int:
    return max(1, int(getattr(settings, "FIBERSTACK_INGEST_RATE_WINDOW", 1)))


def _warn(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 60:
        _last_warning = now
        logger.warning("ingest rate limiting is off: Redis unavailable (%s)", exc)


def _count(token_id: int, what: str, amount: int, limit: int) -> Verdict:
    if limit <= 0:
        return ALLOW
    window = _window()
    now = time.time()
    slot = int(now // window)
    key = f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:metrics:rl:{token_id}:{what}:{slot}"
    try:
        pipe = redis.client().pipeline(transaction=False)
        pipe.incrby(key, amount)
        pipe.expire(key, window + 1)
        used = int(pipe.execute()[0])
    except Exception as exc:
        _warn(exc)
        return ALLOW
    if used > limit:
        retry = max(1, math.ceil((slot + 1) * window - now))
        return Verdict(False, what, limit, retry)
    return ALLOW


def check_request(token_id: int) -> Verdict:
    """Count one request for the token; called before the body is even read."""
    return _count(token_id, "requests", 1, int(getattr(settings, "FIBERSTACK_INGEST_RATE_REQUESTS", 200)))


def check_samples(token_id: int, samples: int) -> Verdict:
    """Count a parsed request's samples; called before anything is stored."""
    if samples <= 0:
        return ALLOW
    return _count(token_id, "samples", samples, int(getattr(settings, "FIBERSTACK_INGEST_RATE_SAMPLES", 2_000_000)))
