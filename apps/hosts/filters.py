"""Host list filters shared by the API and the list page, so both accept the same query string."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from apps.hosts.models import HostQuerySet, HostStatus


def filter_hosts(queryset: HostQuerySet, params: Any, now: datetime.datetime) -> HostQuerySet:
    """name, environment, datacenter, country (exact); q (name or display name contains);
    tag=key:value (repeatable, all must match); status=up|down|unknown. Bad values raise ValidationError
    naming the parameter."""
    for field in ("name", "environment", "datacenter"):
        if params.get(field):
            queryset = queryset.filter(**{field: params[field]})
    if params.get("country"):
        queryset = queryset.filter(country=params["country"].strip().upper())
    if params.get("q"):
        queryset = queryset.filter(Q(name__icontains=params["q"]) | Q(display_name__icontains=params["q"]))
    for tag in params.getlist("tag") if hasattr(params, "getlist") else []:
        if not tag:
            continue
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise ValidationError({"tag": f"Expected key:value, got {tag!r}."})
        queryset = queryset.filter(tags__contains={key: value})
    status = params.get("status")
    if status:
        if status not in HostStatus.values:
            raise ValidationError({"status": f"Expected one of {', '.join(HostStatus.values)}."})
        queryset = queryset.filter_status(status, now)
    return queryset
