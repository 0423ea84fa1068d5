"""The integration doors: ``POST /api/v1/integrations/{id}/alertmanager`` (Alertmanager webhook v4) and
``POST /api/v1/integrations/{id}/generic`` (generic JSON), plain Django views like the other ingest doors
(their plumbing -- ``DoorError``, ``read_body``, the per-token rate limiter and the JSON error shape -- is
apps/metrics/views.py's, imported).

The credential is the integration's own token, never an agent token or a session: ``Authorization: Bearer``
(Alertmanager ``http_config.authorization``), ``Token`` or basic auth (password), or -- for senders that
cannot set headers -- in the URL, ``.../alertmanager/<token>`` or ``?token=<token>`` (URLs end up in proxy
logs: prefer the header). No credential or an unknown one: 401. A valid agent token, or another
integration's token: 403. The right token on another integration's URL: 404.

Replies: 200 ``{"opened", "updated", "resolved", "ignored", "alerts": [{"id", "fingerprint", "state"}],
"rejected": []}``; 400 with the same counts and ``rejected: [{"item", "field", "error"}]`` when some items
were bad (the good ones are applied: an Alertmanager group with one odd alert still pages for the rest); a
whole-body problem is 400 ``{"error", "code": "invalid", "field"}``; 403 ``code: "disabled"`` for a disabled
integration; 413 over ``FIBERSTACK_MAX_REQUEST_BODY_BYTES``; 429 over the rate limit. Never a 5xx for bad
input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.alerts.choices import IntegrationKind
from apps.alerts.inbound import payloads, services
from apps.alerts.models import Integration
from apps.core.asgi_limits import body_limit_for, too_large_body
from apps.metrics import ratelimit
from apps.metrics.views import DoorError, _rate_limited, _require_post, error_response, read_body
from apps.organizations.authentication import token_from_header
from apps.organizations.services import authenticate_token

CHALLENGE = 'Bearer realm="fiberstack-integration"'
PARSERS: dict[str, Callable[[bytes], payloads.Parsed]] = {
    IntegrationKind.ALERTMANAGER: payloads.parse_alertmanager,
    IntegrationKind.GENERIC: payloads.parse_generic,
}


def _credential(request: HttpRequest, url_token: str | None) -> str | None:
    if url_token:
        return url_token
    if request.GET.get("token"):
        return request.GET["token"]
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return token_from_header(header) if header else None


def _integration(request: HttpRequest, public_id: str, url_token: str | None) -> Integration:
    plaintext = _credential(request, url_token)
    if not plaintext:
        raise DoorError(401, "unauthorized", "Authentication required: send the integration's token as "
                        "'Authorization: Bearer <token>' or in the integration URL.", {"WWW-Authenticate": CHALLENGE})
    integration = services.integration_for_token(plaintext)
    if integration is None:
        if authenticate_token(plaintext) is not None:
            raise DoorError(403, "forbidden", "This door takes the integration's own token, not an agent token.")
        raise DoorError(401, "unauthorized", "Invalid integration token.", {"WWW-Authenticate": CHALLENGE})
    if str(integration.public_id) != public_id:
        # Another integration's (possibly another organization's) URL: not found, whatever exists there.
        if Integration.objects.filter(public_id=public_id, organization_id=integration.organization_id).exists():
            raise DoorError(403, "forbidden", "This token belongs to another integration.")
        raise DoorError(404, "not_found", "No such integration.")
    if not integration.organization.is_active:
        raise DoorError(401, "unauthorized", "Invalid integration token.", {"WWW-Authenticate": CHALLENGE})
    return integration


def _read(request: HttpRequest) -> bytes:
    """The body within the limit of non-ingest API paths (alerts are small; the ASGI layer applies the same
    limit before Django, this check covers servers without it)."""
    rule = body_limit_for(request.path_info)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = b"" if declared > rule.limit else read_body(request)[0]
    if declared > rule.limit or len(body) > rule.limit:
        content, _ = too_large_body(request.path_info, rule)
        raise DoorError(413, "too_large", json.loads(content)["error"], limit=rule.limit)
    return body


def _receive(request: HttpRequest, public_id: str, door: str, url_token: str | None) -> HttpResponse:
    _require_post(request)
    integration = _integration(request, public_id, url_token)
    if integration.kind != door:
        raise DoorError(404, "wrong_door", f"The integration {integration.name!r} reads {integration.kind} bodies: "
                        f"POST them to /api/v1/integrations/{integration.public_id}/{integration.kind}.")
    if not (integration.enabled and integration.rule.enabled):
        raise DoorError(403, "disabled", f"The integration {integration.name!r} is disabled.")
    # Keyed by the negated id: integrations and agent tokens share the limiter without sharing counters.
    verdict = ratelimit.check_request(-integration.pk)
    if not verdict.allowed:
        raise _rate_limited(verdict)
    try:
        parsed = PARSERS[door](_read(request))
    except payloads.BodyError as exc:
        raise DoorError(400, "invalid", str(exc), field=exc.field) from None
    summary = services.receive_alerts(integration=integration, alerts=parsed.alerts)
    body: dict[str, Any] = {"opened": summary.opened, "updated": summary.updated, "resolved": summary.resolved,
                            "ignored": summary.ignored, "alerts": summary.alerts,
                            "rejected": [error.as_dict() for error in parsed.errors]}
    if parsed.errors:
        first = parsed.errors[0].as_dict()["error"]
        more = f" (and {len(parsed.errors) - 1} more)" if len(parsed.errors) > 1 else ""
        body.update(error=first + more, code="invalid")
    return JsonResponse(body, status=400 if parsed.errors else 200)


def _door(door: str) -> Callable[..., HttpResponse]:
    @csrf_exempt
    def view(request: HttpRequest, public_id: str, token: str | None = None) -> HttpResponse:
        try:
            return _receive(request, str(public_id).lower(), door, token)
        except DoorError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)

    view.__name__ = view.__qualname__ = f"{door}_door"
    view.__doc__ = f"``POST /api/v1/integrations/{{id}}/{door}``: alerts from a {door} integration."
    return view


alertmanager = _door(IntegrationKind.ALERTMANAGER)
generic = _door(IntegrationKind.GENERIC)
