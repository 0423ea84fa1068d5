"""Applying the audit filters to a queryset, and keyset paging over (created_at, id).

Keyset paging instead of OFFSET/COUNT: the audit table only grows, and the page must stay fast on the
millionth row; every query here walks the `audit_org_created_idx` index."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.audit.models import AuditEvent


def day_start(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of `day` in the current time zone."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def apply_filters(queryset: QuerySet[AuditEvent], cleaned: Mapping[str, Any]) -> QuerySet[AuditEvent]:
    """Narrow `queryset` by the cleaned data of an AuditFilterForm (empty values are ignored)."""
    if cleaned.get("actor"):
        queryset = queryset.filter(actor_repr__icontains=cleaned["actor"])
    if cleaned.get("action"):
        queryset = queryset.filter(action__startswith=cleaned["action"])
    if cleaned.get("object_type"):
        queryset = queryset.filter(object_type__iexact=cleaned["object_type"])
    if cleaned.get("object_id"):
        queryset = queryset.filter(object_id=cleaned["object_id"])
    if cleaned.get("from"):
        queryset = queryset.filter(created_at__gte=day_start(cleaned["from"]))
    if cleaned.get("to"):
        # `to` is inclusive: everything before the start of the next day.
        queryset = queryset.filter(created_at__lt=day_start(cleaned["to"] + datetime.timedelta(days=1)))
    return queryset


def older_than(queryset: QuerySet[AuditEvent], event: AuditEvent) -> QuerySet[AuditEvent]:
    """Rows after `event` in newest-first order."""
    return queryset.filter(Q(created_at__lt=event.created_at) | Q(created_at=event.created_at, id__lt=event.pk))


def newer_than(queryset: QuerySet[AuditEvent], event: AuditEvent) -> QuerySet[AuditEvent]:
    """Rows before `event` in newest-first order."""
    return queryset.filter(Q(created_at__gt=event.created_at) | Q(created_at=event.created_at, id__gt=event.pk))


def iter_batches(queryset: QuerySet[AuditEvent], batch_size: int = 1000) -> Iterator[list[AuditEvent]]:
    """Oldest-first batches of `queryset`, one independent keyset query per batch.

    No server-side cursor stays open between batches, so a consumer may pause (a slow download) or
    hop threads (ASGI) between them without holding a transaction."""
    ordered = queryset.order_by("created_at", "id")
    last: AuditEvent | None = None
    while True:
        page = ordered if last is None else newer_than(ordered, last)
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        last = batch[-1]
