"""Who an API request acts as, for the audit log: its agent token when it has one, else the signed-in user.
Every API write passes this to a service as ``actor``."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request


def request_actor(request: Request) -> Any:
    """The audit actor of an API request: the token for agents, the user for sessions."""
    return request.token if getattr(request, "token", None) is not None else request.user
