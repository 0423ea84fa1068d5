"""Retention of the Elasticsearch copies, the equivalent of an ILM delete phase (run by the beat task
``logs.expire_es_indices``, so it works on any licence and on OpenSearch-compatible stores too).

Like the partitions in PostgreSQL (apps/logs/retention.py), a daily index is shared by every organization:
whole indices are deleted once their day is older than the longest retention any organization has for
that family, and the documents of organizations keeping fewer days are removed by ``_delete_by_query``
(one request per distinct retention, run in the background by Elasticsearch). Search never shows an
organization documents past its own retention anyway (``visible_since`` in apps/logs/es_search.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.logs import es, retention


def expire_family(family: es.IndexFamily, now: dt.datetime) -> dict[str, Any]:
    """Delete the family's indices past retention and the expired documents of shorter retentions."""
    connection = es.client()
    longest = retention.keep_days(family.retention_kind)
    cutoff_day = (now - dt.timedelta(days=longest)).astimezone(dt.UTC).date()
    existing = connection.indices.get(index=family.pattern, allow_no_indices=True, ignore_unavailable=True,
                                      expand_wildcards="open,closed")
    expired = sorted(name for name in existing if (day := family.day_of(name)) is not None and day < cutoff_day)
    for name in expired:  # one name per request: clusters refuse wildcard deletes by default
        connection.indices.delete(index=name, ignore_unavailable=True)
    trimmed = []
    for days, org_ids in sorted(retention.shorter_retentions(family.retention_kind, longest).items()):
        cutoff = now - dt.timedelta(days=days)
        connection.delete_by_query(
            index=family.pattern, allow_no_indices=True, ignore_unavailable=True, conflicts="proceed",
            wait_for_completion=False, refresh=False,
            query={"bool": {"filter": [{"terms": {"organization_id": sorted(org_ids)}},
                                       {"range": {"time_us": {"lt": es.micros(cutoff)}}}]}})
        trimmed.append(days)
    return {"keep_days": longest, "deleted_indices": expired, "trimmed_retentions": trimmed}


def expire_indices(now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Every registered family (logs, events, and what higher apps registered, e.g. alerts)."""
    now = now or timezone.now()
    return {name: expire_family(family, now) for name, family in es.FAMILIES.items()}
