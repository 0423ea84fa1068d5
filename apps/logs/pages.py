"""The logs page ``/<org_slug>/logs/``: search with filters (the same query builder and read side as the
API), and the live tail, which the page's script opens on ``ws/<org_slug>/logs/`` with the same filters."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.access import require_role
from apps.core.roles import Role
from apps.logs import levels, search
from apps.logs.api.views import build_query

TAIL_FILTERS = ("q", "host", "level", "service", "program")


@login_required
def log_search(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    organization = request.organization  # type: ignore[attr-defined]
    error = None
    results: list[dict] = []
    next_cursor = None
    try:
        query = build_query(organization.pk, request.GET)
        results, next_cursor = search.search_entries(query)
    except search.SearchError as exc:
        error = f"{exc.parameter}: {exc.message}"
    filters = {name: request.GET.get(name, "") for name in (*TAIL_FILTERS, "start", "end")}
    next_url = None
    if next_cursor:
        next_url = "?" + urlencode({**{k: v for k, v in filters.items() if v}, "cursor": next_cursor})
    return render(request, "logs/search.html", {
        "organization": organization,
        "results": results,
        "filters": filters,
        "levels": levels.LEVELS[::-1],
        "error": error,
        "next_url": next_url,
        "tail_query": urlencode({k: v for k, v in filters.items() if v and k in TAIL_FILTERS}),
    }, status=400 if error else 200)
