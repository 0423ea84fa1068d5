"""Absence rules: no sample for ``absence_seconds`` -- per selected series when the rule names a metric
(a heartbeat), per host when it does not (host down; see ``heartbeats`` for why not ``last_seen_at``).

Only active hosts count (a deactivated host is decommissioned, not down), and only hosts seen at least
once (a host never seen is "unknown", not down). A watched series stays watched until it leaves the
selector or its host is deactivated: that is what a heartbeat means."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from apps.alerts.choices import Reducer, Severity
from apps.alerts.evaluation import heartbeats
from apps.alerts.evaluation.selection import SeriesInfo
from apps.alerts.evaluation.windows import reduced_values
from apps.alerts.models import AlertRule
from apps.alerts.outcomes import Outcome
from apps.hosts.models import Host
from apps.metrics import hot

#: When an absence rule leaves ``absence_seconds`` empty (the API may).
DEFAULT_ABSENCE_SECONDS = 120


def absence_seconds(rule: AlertRule) -> int:
    return int(rule.absence_seconds or DEFAULT_ABSENCE_SECONDS)


def series_absence(rule: AlertRule, series: Sequence[SeriesInfo], at: dt.datetime) -> list[Outcome]:
    """One outcome per watched series: critical when it has no sample in [at - absence, at]. The hot
    tier's latest time answers most series without touching PostgreSQL; the rest (Redis down, or no
    recent sample there) are counted through the read side, which is authoritative."""
    limit = absence_seconds(rule)
    cutoff = at.timestamp() - limit
    watched = [s for s in series if s.host_active]
    latest = hot.latest_values(rule.organization_id, [s.id for s in watched])
    unsure = [s.id for s in watched if latest.get(s.id, (float("-inf"),))[0] < cutoff]
    counts = reduced_values(rule.organization, unsure, Reducer.COUNT, limit, at) if unsure else {}
    outcomes = []
    for info in watched:
        last = latest.get(info.id)
        silent = round(max(at.timestamp() - last[0], 0.0), 3) if last else None
        absent = info.id in counts and not counts[info.id]
        outcomes.append(Outcome(labels=info.labels, value=silent, severity=Severity.CRITICAL.value if absent else None,
                                threshold=float(limit), host_id=info.host_id, series_id=info.id))
    return outcomes


def host_absence(rule: AlertRule, at: dt.datetime) -> list[Outcome]:
    """One outcome per selected host: critical when it pushed nothing for ``absence_seconds``; the
    value is the seconds since its last push."""
    limit = absence_seconds(rule)
    hosts = Host.objects.filter(organization_id=rule.organization_id, is_active=True, last_seen_at__isnull=False)
    if rule.host_environment:
        hosts = hosts.filter(environment=rule.host_environment)
    if rule.host_tags:
        hosts = hosts.filter(tags__contains=rule.host_tags)
    if rule.host_names:
        hosts = hosts.filter(name__in=rule.host_names)
    rows = list(hosts.order_by("id").values_list("id", "name", "last_seen_at"))
    exact = heartbeats.last_seen(rule.organization_id, [row[0] for row in rows])
    now = at.timestamp()
    outcomes = []
    for host_id, name, seen_at in rows:
        last = max(exact.get(host_id, 0.0), seen_at.timestamp())
        silent = round(max(now - last, 0.0), 3)
        outcomes.append(Outcome(labels={"host": name}, value=silent,
                                severity=Severity.CRITICAL.value if silent > limit else None,
                                threshold=float(limit), host_id=host_id))
    return outcomes
