"""The one way application code talks to Redis directly (hot tier, rate limits, series and host caches,
throttles): the ``default`` cache's connection pool, with short timeouts and a fail-fast window.

Redis is optional on the request path (DESIGN "Redis"): every caller catches ``RedisError`` and carries
on without it. What this module adds is that "without it" is also *fast*:

* ``CACHES["default"]["OPTIONS"]`` sets ``SOCKET_CONNECT_TIMEOUT`` / ``SOCKET_TIMEOUT`` from
  ``FIBERSTACK_REDIS_CONNECT_TIMEOUT_MS`` / ``FIBERSTACK_REDIS_TIMEOUT_MS`` (settings/base.py), so a
  Redis that stopped answering costs at most that per call, not the OS's TCP timeouts;
* ``FailFastConnection`` (the pool's connection class for ``redis://`` URLs, installed by
  ``ConnectionFactory``, the cache's ``CONNECTION_FACTORY``) remembers a failed connect for
  ``FIBERSTACK_REDIS_DOWN_RETRY_SECONDS`` and, during that window, fails further connects to the same
  server at once (a reply that timed out counts too). An unreachable or hung Redis (host gone, packets
  dropped, server stalled) then costs one timeout per process per window instead of one per call -- an
  ingest request makes several calls.

django-redis's ``IGNORE_EXCEPTIONS`` keeps ``django.core.cache`` calls failing open the same way."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django_redis.pool import ConnectionFactory as BaseConnectionFactory
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["ConnectionFactory", "FailFastConnection", "RedisError", "client"]

_down_until: dict[tuple[str, int], float] = {}
_lock = threading.Lock()


def client() -> Any:
    """The raw redis-py client of the ``default`` cache (shared pool, the timeouts above)."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _retry_seconds() -> float:
    return float(getattr(settings, "FIBERSTACK_REDIS_DOWN_RETRY_SECONDS", 5))


class FailFastConnection(Connection):
    """A redis-py TCP connection that does not retry connecting to a server that just failed to answer:
    a refused or timed-out connect, or a reply that did not come within ``SOCKET_TIMEOUT`` (redis-py then
    drops the connection, so the next call connects -- and fails at once while the window lasts)."""

    def _mark_down(self) -> None:
        with _lock:
            _down_until[(self.host, self.port)] = time.monotonic() + _retry_seconds()

    def connect(self) -> None:
        if self._sock:
            return
        server = (self.host, self.port)
        until = _down_until.get(server)
        if until is not None and until > time.monotonic():
            raise RedisConnectionError(f"Redis {self.host}:{self.port} did not answer recently; "
                                       f"not retrying for up to {_retry_seconds():g} s")
        try:
            super().connect()
        except (RedisConnectionError, RedisTimeoutError):
            self._mark_down()
            raise
        if until is not None:
            with _lock:
                _down_until.pop(server, None)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except RedisTimeoutError:
            self._mark_down()
            raise


class ConnectionFactory(BaseConnectionFactory):
    """django-redis's factory, with ``FailFastConnection`` for plain TCP (``redis://``) servers; unix
    sockets and TLS keep redis-py's own connection classes."""

    def get_connection_pool(self, params: dict[str, Any]) -> Any:
        if str(params.get("url", "")).startswith("redis://"):
            params = {**params, "connection_class": FailFastConnection}
        return super().get_connection_pool(params)
