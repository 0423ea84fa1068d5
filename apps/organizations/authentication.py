"""Agent authentication. Agents speak three header forms, and all of them carry the same token:

* ``Authorization: Bearer <token>`` (Prometheus remote_write `authorization`, curl, our agent)
* ``Authorization: Token <token>`` (Telegraf outputs.influxdb_v2)
* HTTP basic auth with the token as the password (Telegraf outputs.influxdb v1, collectd write_http,
  the influx CLI); the user name is ignored.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.organizations.models import AgentToken
from apps.organizations.services import authenticate_token


def token_from_header(header: str) -> str | None:
    """The token carried by an Authorization header value, or None when it carries none."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    scheme = scheme.lower()
    if scheme in {"bearer", "token"}:
        return credentials or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def authenticate_agent(request: HttpRequest) -> AgentToken | None:
    """For plain Django views (the ingest doors): the usable token of the request, or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    plaintext = token_from_header(header) if header else None
    return authenticate_token(plaintext) if plaintext else None


class AgentTokenAuthentication(authentication.BaseAuthentication):
    """DRF authentication for agent tokens; sets request.auth to the AgentToken."""

    def authenticate(self, request: Request) -> tuple[Any, AgentToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        plaintext = token_from_header(header)
        if plaintext is None:
            return None  # another scheme: let the next authenticator try
        token = authenticate_token(plaintext)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return AgentUser(token), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="fiberstack"'


class AgentUser:
    """The request.user of a token-authenticated request: authenticated, but no Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: AgentToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return self.token.audit_actor()

    def get_username(self) -> str:
        return self.token.audit_actor()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """Describes agent tokens in the OpenAPI schema; without it drf-spectacular warns on every endpoint
    and `check --deploy --fail-level WARNING` fails."""

    target_class = "apps.organizations.authentication.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "fst_<prefix>_<secret>",
                "description": "Agent token; `Token <token>` and HTTP basic (token as password) also work."}
