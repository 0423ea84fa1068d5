"""Notification channel pages: the list, a channel's page (its signing secret for editors and up only),
create / edit / rotate secret (editors) and delete (admins), through apps.alerts.services.config."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.alerts.choices import ChannelKind
from apps.alerts.forms import ChannelForm
from apps.alerts.models import NotificationChannel
from apps.alerts.services import config
from apps.alerts.views.common import CONFIGURE_ROLE, DELETE_ROLE, add_service_errors, member, page_context
from apps.core.access import get_for_member, require_role

MASK = "********"


def _channel(request: HttpRequest, public_id: str, *, write: bool = False) -> NotificationChannel:
    """A user-configured channel of the member's organization; one another app manages (a person's contact
    address) is a 404 here, like another organization's."""
    channel = get_for_member(request, NotificationChannel, public_id, write=write)
    if channel.managed_by:
        raise Http404("No such notification channel")
    return channel


def destination(channel: NotificationChannel, *, full: bool) -> str:
    """Where the channel sends. A Slack webhook url is a credential (anyone holding it can post), so
    viewers see its host only, as in the API."""
    if channel.kind == ChannelKind.EMAIL:
        return channel.address
    if channel.kind == ChannelKind.SLACK and not full and channel.url:
        parts = urlsplit(channel.url)
        return f"{parts.scheme}://{parts.netloc}/{MASK}"
    return channel.url


@login_required
@require_GET
def channel_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    member(request)
    context = page_context(request)
    channels = (NotificationChannel.objects.for_org(request.organization)  # type: ignore[attr-defined]
                .user_configured().prefetch_related("rules").order_by("name"))
    rows = [(channel, destination(channel, full=context["can_configure"])) for channel in channels]
    return render(request, "alerts/channel_list.html", {**context, "rows": rows})


@login_required
@require_GET
def channel_detail(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    channel = _channel(request, public_id)
    context = page_context(request)
    full = context["can_configure"]
    headers = {name: (value if full else MASK) for name, value in (channel.headers or {}).items()}
    return render(request, "alerts/channel_detail.html", {
        **context, "channel": channel, "destination": destination(channel, full=full), "headers": headers,
        "rules": channel.rules.order_by("name"),
        "signing_secret": channel.signing_secret if full else None})


@login_required
@require_http_methods(["GET", "POST"])
def channel_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, CONFIGURE_ROLE)
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            channel = config.create_channel(organization=request.organization, actor=request.user,  # type: ignore[attr-defined]
                                            **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Created the channel {channel.name}.")
            return redirect("alerts:channel-detail", org_slug=org_slug, public_id=channel.public_id)
    return render(request, "alerts/channel_form.html", page_context(request, form=form, channel=None),
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, CONFIGURE_ROLE)
    channel = _channel(request, public_id, write=True)
    form = ChannelForm(request.POST or None, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            config.update_channel(channel=channel, actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved the channel {channel.name}.")
            return redirect("alerts:channel-detail", org_slug=org_slug, public_id=channel.public_id)
    return render(request, "alerts/channel_form.html", page_context(request, form=form, channel=channel),
                  status=400 if form.errors else 200)


@login_required
@require_POST
def channel_rotate_secret(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, CONFIGURE_ROLE)
    channel = _channel(request, public_id, write=True)
    config.rotate_channel_secret(channel=channel, actor=request.user)
    messages.success(request, "New signing secret: receivers must verify with it from the next delivery.")
    return redirect("alerts:channel-detail", org_slug=org_slug, public_id=channel.public_id)


@login_required
@require_POST
def channel_delete(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, DELETE_ROLE)
    channel = _channel(request, public_id, write=True)
    config.delete_channel(channel=channel, actor=request.user)
    messages.success(request, f"Deleted the channel {channel.name}.")
    return redirect("alerts:channels", org_slug=org_slug)
