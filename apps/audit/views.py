"""The organization's audit log page and its CSV/JSON export (owners and admins only)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.audit.export import FORMATS, astream_events, change_rows, export_filename, stream_events
from apps.audit.filters import apply_filters, newer_than, older_than
from apps.audit.forms import AuditFilterForm
from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.core.access import require_role
from apps.core.params import choice_param, uuid_param
from apps.core.roles import Role

PAGE_SIZE = 50
CURSOR_PARAMS = ("before", "after")


def _anchor(request: HttpRequest, name: str) -> AuditEvent | None:
    """The event a page cursor names, looked up in the organization only. A cursor that is no UUID is a 400
    naming it; one naming no event of the organization (another's, or one retention removed) means page
    one, as before."""
    public_id = uuid_param(request.GET, name)
    if public_id is None:
        return None
    return AuditEvent.objects.for_org(request.organization).filter(public_id=public_id).first()


def _page(request: HttpRequest, events: QuerySet[AuditEvent]) -> tuple[list[AuditEvent], bool, bool]:
    """(rows newest first, has_newer, has_older) for the keyset cursor in the query string."""
    after = _anchor(request, "after")
    if after is not None:
        rows = list(newer_than(events, after.created_at, after.pk).order_by("created_at", "id")[: PAGE_SIZE + 1])
        return rows[:PAGE_SIZE][::-1], len(rows) > PAGE_SIZE, True
    before = _anchor(request, "before")
    queryset = older_than(events, before.created_at, before.pk) if before is not None else events
    rows = list(queryset.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], before is not None, len(rows) > PAGE_SIZE


def _filter_query(params: QueryDict, *drop: str) -> str:
    query = params.copy()
    for key in (*CURSOR_PARAMS, *drop):
        query.pop(key, None)
    return query.urlencode()


@login_required
@require_GET
def audit_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Newest-first audit events of the organization, filtered, 50 a page, each with its diff."""
    require_role(request, Role.ADMIN)
    form = AuditFilterForm(request.GET)
    events = AuditEvent.objects.for_org(request.organization)
    events = apply_filters(events, form.cleaned_data) if form.is_valid() else events.none()
    rows, has_newer, has_older = _page(request, events)
    context: dict[str, Any] = {
        "organization": request.organization,
        "form": form,
        "rows": [(event, change_rows(event.changes)) for event in rows],
        "newer_cursor": rows[0].public_id if has_newer and rows else None,
        "older_cursor": rows[-1].public_id if has_older and rows else None,
        "filter_query": _filter_query(request.GET),
        "export_query": _filter_query(request.GET, "format"),
    }
    # A filter the form refuses shows its error and no rows, answered 400 like the host and log pages.
    return render(request, "audit/list.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def audit_export(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The filtered events of a period as a CSV or JSON download, streamed batch by batch so a long
    period never sits in memory. The export itself is audited: it copies the log out of the product."""
    require_role(request, Role.ADMIN)
    fmt = choice_param(request.GET, "format", FORMATS) or "csv"
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    organization = request.organization
    events = apply_filters(AuditEvent.objects.for_org(organization), form.cleaned_data)
    filters = {key: str(value) for key, value in form.cleaned_data.items() if value}
    record_event(action="audit.exported", actor=request.user, organization=organization,
                 object_type="audit.auditevent", object_repr=f"{fmt} export",
                 changes={"format": fmt, "filters": filters})
    # Under ASGI an async iterator streams; a sync one would be read whole into memory by Django first.
    stream = astream_events(events, fmt) if isinstance(request, ASGIRequest) else stream_events(events, fmt)
    response = StreamingHttpResponse(stream, content_type=FORMATS[fmt])
    filename = export_filename(organization.slug, fmt, form.cleaned_data.get("from"), form.cleaned_data.get("to"),
                               timezone.localdate())
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
