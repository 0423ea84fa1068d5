"""What one try at sending produced, independent of the transport."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryResult:
    """ok: the receiver took it. retryable: a later try may succeed (timeout, connection error, 408/429/5xx,
    SMTP 4xx); otherwise a failure is final (other 4xx, SMTP 5xx, a channel without a destination)."""

    ok: bool
    retryable: bool = False
    status: int | None = None
    error: str = ""

    @classmethod
    def delivered(cls, status: int | None = None) -> DeliveryResult:
        return cls(ok=True, status=status)

    @classmethod
    def retry(cls, error: str, status: int | None = None) -> DeliveryResult:
        return cls(ok=False, retryable=True, status=status, error=error)

    @classmethod
    def fail(cls, error: str, status: int | None = None) -> DeliveryResult:
        return cls(ok=False, retryable=False, status=status, error=error)
