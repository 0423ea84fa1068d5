"""Organization pages: the organization's agent tokens (the overview at /<org_slug>/ is apps.dashboards)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.core.access import get_for_member, require_role
from apps.core.roles import Role
from apps.organizations.forms import TokenForm
from apps.organizations.models import AgentToken
from apps.organizations.services import issue_token, revoke_token


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Admins list, issue and revoke the organization's agent tokens; a new token is shown once."""
    require_role(request, Role.ADMIN)
    organization = request.organization
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and "revoke" in request.POST:
        token = get_for_member(request, AgentToken, request.POST["revoke"], write=True)
        revoke_token(token=token, actor=request.user)
        messages.success(request, f"Revoked {token.name}.")
        return redirect("organizations:tokens", org_slug=org_slug)
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = issue_token(organization=organization, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
    tokens = AgentToken.objects.for_org(organization).select_related("created_by")
    return render(request, "organizations/tokens.html",
                  {"organization": organization, "tokens": tokens, "form": form, "new_token": new_token})
