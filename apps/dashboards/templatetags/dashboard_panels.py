"""Alerting panels that pages of lower apps embed: `{% host_alerts organization host %}` puts a host's
open alerts on the host page. A template tag of the top floor keeps apps.hosts free of imports from
alerts (HOUSE_STYLE "one-way floors"), the same seam as `{% host_charts %}`."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Case, IntegerField, Value, When

from apps.alerts.choices import OPEN_STATES, AlertState, Severity
from apps.alerts.models import Alert

register = template.Library()

HOST_ALERTS_SHOWN = 50


@register.inclusion_tag("dashboards/_host_alerts.html")
def host_alerts(organization: Any, host: Any) -> dict[str, Any]:
    """The host's open alerts (firing first, then critical first, newest first) in one query."""
    urgency = Case(When(state=AlertState.FIRING, then=Value(0)), When(state=AlertState.ACKNOWLEDGED, then=Value(1)),
                   default=Value(2), output_field=IntegerField())
    critical_first = Case(When(severity=Severity.CRITICAL, then=Value(0)), default=Value(1),
                          output_field=IntegerField())
    alerts = list(Alert.objects.for_org(organization).filter(host=host, state__in=OPEN_STATES)
                  .select_related("rule").order_by(urgency, critical_first, "-started_at", "-id")[:HOST_ALERTS_SHOWN])
    return {"organization": organization, "host": host, "alerts": alerts}
