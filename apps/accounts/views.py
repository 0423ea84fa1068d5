"""Account pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to their first organization, or show that they have none."""
    membership = request.user.memberships.select_related("organization").order_by("organization__name").first()
    if membership is not None:
        return redirect("organizations:overview", org_slug=membership.organization.slug)
    return render(request, "accounts/no_organization.html")
