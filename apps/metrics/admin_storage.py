"""The admin's storage page: what every storage tier holds and costs (``apps.metrics.storage.report``, the
same figures as ``manage.py storage_report``). Platform admins (superusers) only, read-only; the admin index
links to it (templates/admin/index.html)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_safe

from apps.metrics.storage.report import COLUMNS, build_report, display_rows


@require_safe
def storage_page(request: HttpRequest) -> HttpResponse:
    """Staff without superuser rights get 403: sizes and time ranges span every organization."""
    if not request.user.is_superuser:
        raise PermissionDenied("platform admins only")
    report = build_report()
    context = {
        **admin.site.each_context(request),
        "title": "Storage",
        "report": report,
        "columns": COLUMNS,
        "rows": display_rows(report),
        "total": f"{report.total_bytes:,}",
    }
    return TemplateResponse(request, "admin/metrics/storage.html", context)
