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


def older_than(queryset: QuerySet[AuditEvent], created_at: datetime.datetime, pk: int) -> QuerySet[AuditEvent]:
    """Rows after (created_at, pk) in newest-first order."""
    # The redundant range condition lets PostgreSQL use the (organization, created_at) index as a range;
    # the OR alone makes it scan every row of the organization for each page.
    return queryset.filter(created_at__lte=created_at).filter(Q(created_at__lt=created_at) | Q(id__lt=pk))


def newer_than(queryset: QuerySet[AuditEvent], created_at: datetime.datetime, pk: int) -> QuerySet[AuditEvent]:
    """Rows before (created_at, pk) in newest-first order."""
    return queryset.filter(created_at__gte=created_at).filter(Q(created_at__gt=created_at) | Q(id__gt=pk))


def iter_batches(queryset: QuerySet[AuditEvent], fields: list[str],
                 batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """Oldest-first batches of `queryset` as dicts of `fields`, one independent keyset query per batch.

    No server-side cursor stays open between batches, so a consumer may pause (a slow download) or
    hop threads (ASGI) between them without holding a transaction. Dicts, not model instances: building
    instances was most of the cost of a large export."""
    ordered = queryset.order_by("created_at", "id").values("id", "created_at", *fields)
    last: dict[str, Any] | None = None
    while True:
        page = ordered if last is None else newer_than(ordered, last["created_at"], last["id"])
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        last = batch[-1]
