"""``{% host_events organization host %}``: the recent events of a host, for its detail page. A template
tag (like dashboards' ``host_charts``) so the hosts app, a lower floor, never imports logs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from apps.logs import search

register = template.Library()
HOST_EVENTS_DAYS = 30
HOST_EVENTS_LIMIT = 20


@register.inclusion_tag("logs/_host_events.html")
def host_events(organization: Any, host: Any) -> dict[str, Any]:
    now = timezone.now()
    query = search.LogQuery(organization_id=organization.pk, start=now - dt.timedelta(days=HOST_EVENTS_DAYS),
                            end=now + dt.timedelta(minutes=10), host_ids=[host.pk], limit=HOST_EVENTS_LIMIT)
    events, _ = search.search_events(query)
    return {"organization": organization, "host": host, "events": events, "days": HOST_EVENTS_DAYS}
