"""The page behind the signed acknowledge / resolve links of escalation notifications. GET only shows a
confirmation button (link scanners and chat previews fetch links; they must not acknowledge); POST acts,
through the alert lifecycle, with the link's user as the actor. The signed token in the URL is the
credential: no ambient cookie is involved, so there is nothing for a cross-site request to ride on and
CSRF protection is exempted for this view only. The user must still be an active member of the alert's
organization with a role that may acknowledge (editor), checked on every use."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.alerts.choices import AlertState
from apps.alerts.models import Alert
from apps.alerts.services.lifecycle import AlertStateError, acknowledge_alert, resolve_alert
from apps.core.roles import Role, role_at_least
from apps.escalation import engine, group_services, verification
from apps.escalation.choices import RunStatus
from apps.escalation.links import LinkClaim, read_token
from apps.escalation.models import EscalationRun
from apps.organizations.models import Membership


def _page(request: HttpRequest, status: int, title: str, message: str, **context: Any) -> HttpResponse:
    response = render(request, "escalation/alert_link.html", {"title": title, "message": message, **context},
                      status=status)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to other sites
    return response


def _resolve_claim(claim: LinkClaim) -> tuple[Alert | None, Any]:
    alert = Alert.objects.select_related("organization", "group").filter(public_id=claim.alert_public_id).first()
    user = get_user_model().objects.filter(pk=claim.user_id, is_active=True).first()
    if alert is None or user is None:
        return None, None
    role = Membership.objects.filter(organization_id=alert.organization_id, user=user).values_list(
        "role", flat=True).first()
    if not role_at_least(role, Role.EDITOR):
        return None, None
    return alert, user


def _perform(alert: Alert, user: Any, action: str) -> str:
    if action in ("acknowledge_group", "resolve_group"):
        if alert.group is None:
            raise AlertStateError("The alert is no longer in a group.", state=alert.state)
        if action == "resolve_group":
            done = group_services.resolve_group(group=alert.group, actor=user)
            return f"Resolved {len(done)} alert(s) of the group."
        done = group_services.acknowledge_group(group=alert.group, actor=user)
        return f"Acknowledged {len(done)} alert(s) of the group; escalation stopped."
    if action == "resolve":
        resolve_alert(alert=alert, actor=user)
        return "The alert is resolved."
    if alert.state == AlertState.ACKNOWLEDGED and EscalationRun.objects.filter(
            alert=alert, status=RunStatus.ACTIVE).exists():
        engine.reacknowledge(alert=alert, actor=user)  # re-escalating after its acknowledgement timed out
        return "Acknowledged again; escalation stopped."
    acknowledge_alert(alert=alert, actor=user)
    return "The alert is acknowledged; escalation stopped."


@csrf_exempt  # the signed token is the credential (see the module docstring)
@require_http_methods(["GET", "POST"])
def alert_link(request: HttpRequest, token: str) -> HttpResponse:
    """Confirm (GET) and perform (POST) the action a signed link names."""
    claim = read_token(token)
    alert, user = _resolve_claim(claim) if claim else (None, None)
    if claim is None or alert is None:
        return _page(request, 404, "Link not valid", "This link is invalid, has expired, or is no longer yours.")
    verb = "Acknowledge" if claim.action.startswith("acknowledge") else "Resolve"
    what = "every alert of this group" if claim.action.endswith("_group") else "this alert"
    if request.method == "GET":
        return _page(request, 200, f"{verb} alert", f"{verb} {what} as {user.get_username()}?", alert=alert,
                     user=user, confirm=verb)
    try:
        message = _perform(alert, user, claim.action)
    except AlertStateError as exc:
        return _page(request, 409, f"{verb} alert", str(exc), alert=alert)
    alert.refresh_from_db()
    return _page(request, 200, f"{verb} alert", message, alert=alert)


@csrf_exempt  # the signed token is the credential, as for alert links
@require_http_methods(["GET", "POST"])
def contact_verification(request: HttpRequest, token: str) -> HttpResponse:
    """Confirm (GET) and verify (POST) the contact method a signed verification link names. The link
    proves its holder reads that address; a link sent before the address changed is void."""
    claim = verification.read_token(token)
    method = verification.method_for_claim(claim) if claim else None
    if method is None:
        return _page(request, 404, "Link not valid",
                     "This verification link is invalid, has expired, or its address has changed since.")
    what = f"{method.kind} {method.destination}"
    owner = method.user.get_username()
    if request.method == "GET":
        if method.verified:
            return _page(request, 200, "Contact method verified", f"{what} is already verified for {owner}.")
        return _page(request, 200, "Verify contact method",
                     f"Confirm that {what} reaches {owner} ({method.organization.name})?", confirm="Verify")
    verification.verify_contact_method(method=method, actor=method.user, via="link")
    return _page(request, 200, "Contact method verified", f"{what} is verified: {owner} can be paged there.")
