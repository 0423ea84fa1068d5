"""Whether an alert's notifications are suppressed at an instant: a silence, a maintenance window or
dependency inhibition. Suppression concerns notifications only -- evaluation and resolution go on.

Pure parts, shared by the services, the API, the admin and the pages:

* silence matchers (``[{"name", "op", "value"}]``, ops ``= != =~ !~``) in the query API's semantics: a
  missing label is the empty string and regexes are fully anchored RE2, as in Prometheus
  (``apps.core.user_regex``: linear time, whatever the pattern); matcher strings are parsed by the metrics
  read side's parser (``apps.metrics.read.select.parse_matchers``), never a second one;
* maintenance recurrence: one-off (``starts_at`` for ``duration_seconds``) or an RFC 5545 RRULE expanded
  with python-dateutil from ``starts_at`` in ``time_zone`` on naive local wall times, so "Sundays 02:00"
  stays 02:00 local across DST. A local start that does not exist (the spring gap) is read with the
  offset before the gap (RFC 5545 3.3.5: 02:30 becomes 03:30 summer time); an ambiguous one (the autumn
  fold) is its first instant. An occurrence lasts ``duration_seconds`` of real time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr
from django.core.exceptions import ValidationError
from django.db.models import DurationField, ExpressionWrapper, F, Q

from apps.alerts.choices import NOTIFIABLE_STATES
from apps.alerts.models import Alert, MaintenanceWindow, Silence
from apps.core.user_regex import UserRegexError, compile_user_regex, user_regex_matches
from apps.hosts.graph import upstream_closures
from apps.hosts.models import Host, NodeRef, Service
from apps.metrics.read.params import QueryError
from apps.metrics.read.select import parse_matchers


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why an alert is not notified: ``kind`` is silence | maintenance | inhibition, ``reason`` reads well
    on a page ("silenced by …", "inhibited by host db-1 down"), ``ref`` is the public id of the cause."""

    kind: str
    reason: str
    ref: str = ""


# --- silence matchers ------------------------------------------------------------------------------

MATCHER_OPS = ("=", "!=", "=~", "!~")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def matcher_matches(matcher: Mapping[str, str], labels: Mapping[str, Any]) -> bool:
    """One matcher against a label set; a missing label is "" (so ``x=""`` matches alerts without x).
    UserRegexError when RE2 refuses the regex (``clean_matchers`` refuses it first)."""
    value = str(labels.get(matcher["name"], ""))
    op = matcher["op"]
    if op == "=":
        return value == matcher["value"]
    if op == "!=":
        return value != matcher["value"]
    matched = user_regex_matches(matcher["value"], value)
    return matched if op == "=~" else not matched


def matchers_match(matchers: Iterable[Mapping[str, str]], labels: Mapping[str, Any]) -> bool:
    """Every matcher matches. A silence stored before regexes were RE2 may hold one RE2 refuses
    (a lookahead): it matches nothing, so it cannot silence more than its author meant."""
    try:
        return all(matcher_matches(m, labels) for m in matchers)
    except UserRegexError:
        return False


def _describe(matcher: Mapping[str, Any]) -> str:
    return f'{matcher.get("name")}{matcher.get("op")}"{matcher.get("value")}"'


def clean_matchers(raw: Any, field: str = "matchers") -> list[dict[str, str]]:
    """A matcher string (``alertname="cpu",host=~"db-.*"``) or a list of ``{"name", "op", "value"}`` ->
    the stored list. Refuses (ValidationError naming ``field`` and the matcher) unknown ops, bad label
    names, bad regexes, and a set every alert would match (Alertmanager's rule: at least one matcher
    must not match the empty string, so a typo cannot silence the whole organization)."""
    if isinstance(raw, str):
        try:
            parsed = parse_matchers(raw, field)
        except QueryError as exc:
            raise ValidationError({field: exc.message}) from None
        matchers = [{"name": m.label, "op": m.op, "value": m.value} for m in parsed]
    elif isinstance(raw, list | tuple):
        matchers = []
        for index, item in enumerate(raw):
            where = f"{field}[{index}]"
            if not isinstance(item, Mapping) or set(item) - {"name", "op", "value"} or "name" not in item:
                raise ValidationError({field: f'{where}: expected {{"name", "op", "value"}}, got {item!r:.80}'})
            name, op, value = item["name"], item.get("op", "="), item.get("value", "")
            if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
                raise ValidationError({field: f"{where}: {name!r:.60} is not a label name"})
            if op not in MATCHER_OPS:
                raise ValidationError({field: f"{where} ({name}): op must be one of {', '.join(MATCHER_OPS)}, "
                                              f"not {op!r:.20}"})
            if not isinstance(value, str):
                raise ValidationError({field: f"{where} ({name}): value must be a string"})
            if op in ("=~", "!~"):
                try:
                    compile_user_regex(value)
                except UserRegexError as exc:
                    raise ValidationError({field: f"{where} ({name}{op}{value!r:.60}): invalid regular "
                                                  f"expression: {exc}"}) from None
            matchers.append({"name": name, "op": op, "value": value})
    else:
        raise ValidationError({field: 'expected a matcher string or a list of {"name", "op", "value"}'})
    if not matchers:
        raise ValidationError({field: "a silence needs at least one matcher"})
    if all(matcher_matches(m, {}) for m in matchers):
        raise ValidationError({field: "at least one matcher must not match the empty string (these would "
                                      "silence every alert): " + ",".join(_describe(m) for m in matchers)})
    return matchers


def silence_state(silence: Silence, now: dt.datetime) -> str:
    """pending (not started), active, or expired (ended; an expired silence is kept for the record)."""
    if now < silence.starts_at:
        return "pending"
    return "active" if now < silence.ends_at else "expired"


# --- maintenance recurrence ------------------------------------------------------------------------

#: Sub-hourly recurrences are refused: expanding them from an old ``starts_at`` costs too much and no
#: maintenance is planned by the minute.
_ALLOWED_FREQS = {YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY}
#: Local wall time and UTC differ by at most a day; looking this far around an instant finds every
#: occurrence whose real time could cover it.
_MARGIN = dt.timedelta(days=1, hours=2)
_UTC_UNTIL = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


def zone(name: str, field: str = "time_zone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError({field: f"unknown time zone {name!r:.70}: use an IANA name such as Europe/Berlin"}) \
            from None


def _local(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _aware(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    # fold=0: a gap time takes the offset before the gap, an ambiguous one its first instant (RFC 5545).
    return local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


@lru_cache(maxsize=128)
def _rule(text: str, dtstart: dt.datetime, tz_name: str) -> rrule:
    """The expanded rule; lru-cached with dateutil's own occurrence cache, so evaluating the same window
    every few seconds does not re-walk it from its first occurrence."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    # An UNTIL in UTC (as RFC 5545 requires with a zoned DTSTART) is turned into local wall time here,
    # since the rule itself is expanded on naive local times.
    tz = ZoneInfo(tz_name)
    body = _UTC_UNTIL.sub(lambda m: "UNTIL=" + _local(dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S")
                                                      .replace(tzinfo=dt.UTC), tz).strftime("%Y%m%dT%H%M%S"), body)
    return rrulestr(body, dtstart=dtstart, cache=True)  # type: ignore[return-value]


def rule_for(text: str, *, starts_at: dt.datetime, time_zone: str) -> rrule:
    """Parse and check an RRULE (ValidationError naming ``rrule`` or ``time_zone``)."""
    tz = zone(time_zone)
    if any(c in text for c in "\r\n") or "DTSTART" in text.upper() or "EXDATE" in text.upper():
        raise ValidationError({"rrule": "give one RRULE such as FREQ=WEEKLY;BYDAY=SU (starts_at is its DTSTART)"})
    try:
        rule = _rule(text, _local(starts_at, tz).replace(microsecond=0), time_zone)
    except (ValueError, TypeError) as exc:
        raise ValidationError({"rrule": f"invalid RRULE {text!r:.100}: {exc}"}) from None
    if not isinstance(rule, rrule) or rule._freq not in _ALLOWED_FREQS:
        raise ValidationError({"rrule": "the recurrence must be hourly or slower (FREQ=HOURLY, DAILY, WEEKLY, "
                                        "MONTHLY or YEARLY)"})
    if not _ever_occurs(rule):
        raise ValidationError({"rrule": f"the RRULE {text!r:.100} has no occurrence on or after starts_at"})
    return rule


def _ever_occurs(rule: rrule) -> bool:
    """Whether ``rule`` yields anything. dateutil looks for a first occurrence of an impossible rule
    (``BYMONTH=2;BYMONTHDAY=30``) until the year 9999 -- seconds of CPU on every check -- so the question
    is asked of a copy moved by whole 400-year Gregorian cycles (the same calendar, weekdays and leap
    years) to 40-440 years before 9999, where dateutil gives up soon."""
    start: dt.datetime = rule._dtstart  # type: ignore[attr-defined]
    shift = max(0, (dt.MAXYEAR - 40 - start.year) // 400 * 400)
    probe = rule.replace(dtstart=start.replace(year=start.year + shift), until=None, count=None, cache=False)
    if probe.after(probe._dtstart, inc=True) is None:  # type: ignore[attr-defined]
        return False
    return rule.after(start, inc=True) is not None  # UNTIL / COUNT may still leave nothing


def clean_schedule(*, starts_at: dt.datetime, duration_seconds: int, rrule: str, time_zone: str,
                   until: dt.datetime | None) -> None:
    """Validate a maintenance window's schedule; every problem is a ValidationError naming its field."""
    if not isinstance(duration_seconds, int) or duration_seconds < 1:
        raise ValidationError({"duration": "the duration must be a whole number of seconds, at least 1"})
    zone(time_zone)
    if rrule:
        rule_for(rrule, starts_at=starts_at, time_zone=time_zone)
    if until is not None and until < starts_at:
        raise ValidationError({"until": "until must not be before starts_at"})


def _occurrences_from(window: MaintenanceWindow, since: dt.datetime) -> Iterable[dt.datetime]:
    """Occurrence starts (aware, UTC) in order, from about ``since`` (a little earlier), honouring until."""
    tz = ZoneInfo(window.time_zone)
    rule = _rule(window.rrule, _local(window.starts_at, tz).replace(microsecond=0), window.time_zone)
    seen: dt.datetime | None = None
    for local in rule.xafter(_local(since, tz) - _MARGIN, inc=True):
        start = _aware(local, tz)
        if window.until is not None and start > window.until:
            return
        if start != seen:  # an hourly rule meets the same instant twice around the spring gap
            seen = start
            yield start


def occurrence_covering(window: MaintenanceWindow, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The occurrence ``(start, end)`` of ``window`` in progress at ``at`` (the latest-starting one when
    occurrences overlap), or None."""
    duration = dt.timedelta(seconds=window.duration_seconds)
    if not window.rrule:
        start = window.starts_at
        return (start, start + duration) if start <= at < start + duration else None
    covering = None
    for start in _occurrences_from(window, at - duration):
        if start > at + _MARGIN:
            break
        if start <= at < start + duration:
            covering = (start, start + duration)
    return covering


def next_occurrences(window: MaintenanceWindow, after: dt.datetime,
                     count: int = 5) -> list[tuple[dt.datetime, dt.datetime]]:
    """The next ``count`` occurrences still running or starting after ``after`` (for the pages and API)."""
    duration = dt.timedelta(seconds=window.duration_seconds)
    if not window.rrule:
        end = window.starts_at + duration
        return [(window.starts_at, end)] if end > after and count > 0 else []
    found: list[tuple[dt.datetime, dt.datetime]] = []
    for start in _occurrences_from(window, after - duration):
        if len(found) >= count:
            break
        if start + duration > after:
            found.append((start, start + duration))
    return found


# --- the check the lifecycle calls -----------------------------------------------------------------


def suppression_for(alert: Alert, *, at: dt.datetime) -> Suppression | None:
    """Why ``alert`` must not be notified at ``at``, or None: the first of an active silence matching its
    labels, a maintenance window in progress covering it, or a firing (or acknowledged) alert on a node
    upstream of its host/service in the dependency graph.

    Resolved notifications are the caller's decision: anything notified as firing must be notified as
    resolved, suppression or not, so the lifecycle does not consult this for a resolved notification of
    an alert it told someone about (a silence that ended meanwhile must not swallow it either way)."""
    return suppressions_for([alert], at=at).get(alert.pk)


def suppressions_for(alerts: Sequence[Alert], *, at: dt.datetime) -> dict[int, Suppression | None]:
    """:func:`suppression_for` of many alerts: alert pk -> its suppression. What it consults is loaded once
    per organization (its silences, the maintenance windows that may be running with their scopes, the
    tags of the alerts' hosts, the dependency edges and the alerts that could inhibit) and matched in
    memory, so a storm of a thousand alerts costs a few queries per organization, not a few per alert."""
    found: dict[int, Suppression | None] = {}
    by_org: dict[int, list[Alert]] = {}
    for alert in alerts:
        by_org.setdefault(alert.organization_id, []).append(alert)
    for organization_id, members in by_org.items():
        silences = _Silences(organization_id, at)
        windows = _Windows(organization_id, members, at)
        pending = []
        for alert in members:
            found[alert.pk] = silences.first(alert) or windows.first(alert)
            if found[alert.pk] is None:
                pending.append(alert)
        found.update(_inhibitions(organization_id, pending))
    return found


class _Silences:
    """The organization's active silences, loaded once."""

    def __init__(self, organization_id: int, at: dt.datetime) -> None:
        # alerts_silence_org_end_idx: the organization's silences not yet over.
        self.silences = list(Silence.objects.filter(organization_id=organization_id, ends_at__gt=at, starts_at__lte=at)
                             .order_by("starts_at", "pk")
                             .only("public_id", "matchers", "ends_at", "created_by_repr", "comment"))

    def first(self, alert: Alert) -> Suppression | None:
        for silence in self.silences:
            if matchers_match(silence.matchers, alert.labels):
                who = f" by {silence.created_by_repr}" if silence.created_by_repr else ""
                why = f": {silence.comment[:200]}" if silence.comment else ""
                return Suppression("silence", f"silenced{who} until {silence.ends_at:%Y-%m-%d %H:%M} UTC{why}",
                                   str(silence.public_id))
        return None


class _Windows:
    """The organization's maintenance windows that may be running at ``at``, with their scopes (hosts,
    host tags, services), loaded once; whether one covers an alert is decided in memory: the union of its
    hosts, its host tags (every tag of the window on the alert's host) and its services (the alert's host
    runs one, or -- for an alert without a host -- ``labels["service"]`` names one); a window with none of
    the three covers everything."""

    def __init__(self, organization_id: int, alerts: Sequence[Alert], at: dt.datetime) -> None:
        duration = ExpressionWrapper(F("duration_seconds") * dt.timedelta(seconds=1), output_field=DurationField())
        self.windows = list(
            MaintenanceWindow.objects.filter(organization_id=organization_id, starts_at__lte=at)
            .annotate(first_end=F("starts_at") + duration, last_end=F("until") + duration)
            .filter(Q(rrule="", first_end__gt=at) | (~Q(rrule="") & (Q(until__isnull=True) | Q(last_end__gt=at))))
            .order_by("pk"))
        self.at = at
        self.covering: dict[int, tuple[dt.datetime, dt.datetime] | None] = {}
        self.hosts: dict[int, set[int]] = {}
        self.services: dict[int, list[tuple[int, str]]] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        if not self.windows:
            return
        ids = [w.pk for w in self.windows]
        for window_id, host_id in (MaintenanceWindow.hosts.through.objects.filter(maintenancewindow_id__in=ids)
                                   .values_list("maintenancewindow_id", "host_id")):
            self.hosts.setdefault(window_id, set()).add(host_id)
        for window_id, host_id, name in (MaintenanceWindow.services.through.objects
                                         .filter(maintenancewindow_id__in=ids)
                                         .values_list("maintenancewindow_id", "service__host_id", "service__name")):
            self.services.setdefault(window_id, []).append((host_id, name))
        host_ids = {a.host_id for a in alerts if a.host_id is not None}
        if host_ids and any(w.host_tags for w in self.windows):
            self.tags = {pk: tags or {} for pk, tags in Host.objects.filter(organization_id=organization_id,
                                                                            pk__in=host_ids)
                         .values_list("pk", "tags")}

    def _covers(self, window: MaintenanceWindow, alert: Alert) -> bool:
        hosts, services = self.hosts.get(window.pk, set()), self.services.get(window.pk, [])
        if not window.host_tags and not hosts and not services:
            return True
        if alert.host_id is not None:
            if alert.host_id in hosts or any(host_id == alert.host_id for host_id, _ in services):
                return True
            tags = self.tags.get(alert.host_id)
            return bool(tags and window.host_tags
                        and all(k in tags and tags[k] == v for k, v in window.host_tags.items()))
        service = alert.labels.get("service")
        return bool(service) and any(name == service for _, name in services)

    def first(self, alert: Alert) -> Suppression | None:
        for window in self.windows:
            if not self._covers(window, alert):
                continue
            if window.pk not in self.covering:
                self.covering[window.pk] = occurrence_covering(window, self.at)
            occurrence = self.covering[window.pk]
            if occurrence is not None:
                return Suppression("maintenance", f'in maintenance "{window.name}" until '
                                                  f"{occurrence[1]:%Y-%m-%d %H:%M} UTC", str(window.public_id))
        return None


def _inhibitions(organization_id: int, alerts: Sequence[Alert]) -> dict[int, Suppression | None]:
    """Dependency inhibition of alerts of one organization: an alert is inhibited by the oldest firing (or
    acknowledged) other alert on a node upstream of its host/service. Acknowledged upstream alerts still
    inhibit: acknowledging says someone works on the cause, not that it is gone, and the dependents' pages
    would be the same noise. Pending and resolved ones do not."""
    if not alerts:
        return {}
    names = {a.labels.get("service") for a in alerts if a.labels.get("service")}
    services: list[tuple[int, str, int | None]] = (
        list(Service.objects.filter(organization_id=organization_id, name__in=names).order_by("pk")
             .values_list("pk", "name", "host_id")) if names else [])
    starts: dict[int, list[NodeRef]] = {}
    for alert in alerts:
        nodes = [NodeRef("host", alert.host_id)] if alert.host_id is not None else []
        name = alert.labels.get("service")
        if name:
            own = [pk for pk, n, host_id in services
                   if n == name and (alert.host_id is None or host_id == alert.host_id)]
            nodes += [NodeRef("service", pk) for pk in own[:20]]
        starts[alert.pk] = nodes
    closures = upstream_closures(organization_id, {node for nodes in starts.values() for node in nodes})
    upstream_of: dict[int, set[NodeRef]] = {}
    for alert in alerts:
        upstream_of[alert.pk] = set().union(*(closures.get(node, set()) for node in starts[alert.pk]))
    every = set().union(*upstream_of.values())
    found: dict[int, Suppression | None] = {alert.pk: None for alert in alerts}
    if not every:
        return found
    service_of = dict((pk, (host_id, name)) for pk, host_id, name in
                      Service.objects.filter(organization_id=organization_id,
                                             pk__in=[n.id for n in every if n.kind == "service"])
                      .values_list("pk", "host_id", "name"))
    all_hosts = {n.id for n in every if n.kind == "host"}
    all_names = {name for _, name in service_of.values()}
    on_any = Q(host_id__in=all_hosts)
    if all_names:
        on_any |= Q(labels__service__in=list(all_names))
    # alerts_alert_org_state_idx: the organization's firing and acknowledged alerts.
    causes = list(Alert.objects.filter(organization_id=organization_id, state__in=NOTIFIABLE_STATES).filter(on_any)
                  .select_related("host").only("public_id", "labels", "host_id", "host__name")
                  .order_by("started_at", "pk"))
    for alert in alerts:
        host_ids = {n.id for n in upstream_of[alert.pk] if n.kind == "host"}
        upstream_services = [service_of[n.id] for n in upstream_of[alert.pk]
                             if n.kind == "service" and n.id in service_of]
        for cause in causes:
            if cause.pk == alert.pk:
                continue
            on_host = cause.host_id in host_ids
            on_service = any(cause.labels.get("service") == name and (cause.host_id is None or cause.host_id == host_id)
                             for host_id, name in upstream_services)
            if on_host or on_service:
                upstream_name = (cause.host.name if on_host and cause.host is not None
                                 else f'service {cause.labels.get("service")}')
                alertname = cause.labels.get("alertname", "an alert")
                found[alert.pk] = Suppression("inhibition", f"inhibited by {alertname} on {upstream_name}",
                                              str(cause.public_id))
                break
    return found
