"""Who may call what, for every API endpoint: the endpoints are ENUMERATED from the URL conf (everything
under /api/, every DRF view anywhere, every ingest door), so a new endpoint or a new method on a viewset
fails here until it is classified in RULES. Each one is called by an anonymous client, a token of each
scope (ingest, its alias write, read, config) and a signed-in member of each role, and must answer the
exact status: the allowed status (a real 2xx with a valid request) or 403 (401 without credentials). A
token's 403 is JSON and names the scope needed.

The expectations are written out here, not read from the code under test (`ADMITS`, `ROLE_ORDER`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.escalation import verification
from apps.escalation.feeds import feed_token
from apps.escalation.links import make_token
from apps.escalation.models import GroupRoute, RulePolicy
from apps.escalation.services import create_calendar_feed
from apps.hosts.models import ServiceDependency
from apps.organizations.services import issue_token
from tests.alerts.factories import AlertFactory, AlertRuleFactory, NotificationChannelFactory, SilenceFactory
from tests.alerts.factories_inbound import make_integration
from tests.alerts.factories_suppression import MaintenanceWindowFactory
from tests.dashboards.saved_factories import SavedDashboardFactory
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory, ScheduleOverrideFactory
from tests.escalation.factories_policies import EscalationPolicyFactory, contact, escalating_group
from tests.hosts.factories import HostFactory, ServiceFactory
from tests.metrics.factories import SeriesFactory, fixture_bytes, fixture_headers
from tests.organizations.factories import MembershipFactory, UserFactory

ANON = "anonymous"
TOKENS = ("ingest", "write", "read", "config")
ROLE_ORDER = (Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER)
CALLERS = (ANON, *TOKENS, *ROLE_ORDER)
# Which token scopes satisfy a required scope (write is the old name of ingest; config includes read).
ADMITS = {"ingest": {"ingest", "write"}, "read": {"read", "config"}, "config": {"config"}, "any": set(TOKENS)}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    """One endpoint and method: the status when allowed, the token scope it needs (None: no token may)
    and the least member role (None: members get what an anonymous caller gets, as on ingest doors)."""

    ok: int
    scope: str | None
    role: str | None
    body: Callable[[World], Any] | None = None
    raw: Callable[[], tuple[bytes, dict[str, str]]] | None = None  # (body, META) for the ingest doors
    query: dict[str, str] = field(default_factory=dict)
    no_token: int = 401  # the answer to callers without a token, where no role applies

    def expected(self, caller: str) -> int:
        if caller in TOKENS:
            return self.ok if self.scope is not None and caller in ADMITS[self.scope] else 403
        if caller == ANON or self.role is None:
            return self.no_token
        return self.ok if ROLE_ORDER.index(caller) >= ROLE_ORDER.index(self.role) else 403


def _line_protocol() -> tuple[bytes, dict[str, str]]:
    return b"door_test,host=h1 value=1", {"CONTENT_TYPE": "text/plain"}


def _json(payload: Any) -> Callable[[], tuple[bytes, dict[str, str]]]:
    return lambda: (json.dumps(payload() if callable(payload) else payload).encode(),
                    {"CONTENT_TYPE": "application/json"})


def _remote_write() -> tuple[bytes, dict[str, str]]:
    return fixture_bytes("prom_rw_01.snappy.pb"), fixture_headers("prom_rw_01.headers.json")


NODE = "7d444840-9dc0-11d1-b245-5ffdce74fad2"


def _probe() -> dict[str, Any]:
    return {"node_id": NODE, "country": "DE", "region": "eu-central", "latency_ms": 12.5, "uptime_pct": 99.9,
            "packet_loss": 0.1, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _collectd() -> list[dict[str, Any]]:
    return [{"values": [0.5], "dstypes": ["gauge"], "dsnames": ["value"], "time": time.time(), "interval": 10,
             "host": "h1", "plugin": "load", "plugin_instance": "", "type": "load", "type_instance": ""}]


def _bulk() -> tuple[bytes, dict[str, str]]:
    return (b'{"index":{"_index":"door-test","_type":"events"}}\n{"message":"door test"}\n',
            {"CONTENT_TYPE": "application/json"})


V, E, A, _OWNER = ROLE_ORDER
INGEST_DOOR = {"scope": "ingest", "role": None}
RULES: dict[tuple[str, str], Rule] = {
    # Schema and docs: any authenticated caller (they describe the API, not an organization's data).
    ("api-schema", "get"): Rule(200, "any", V),
    ("api-docs", "get"): Rule(200, "any", V),
    # The organization itself: read tokens may see which organization they are in; settings are for admins.
    ("organization-current", "get"): Rule(200, "read", V),
    ("organization-current", "patch"): Rule(200, None, A, lambda w: {"name": "Acme Renamed"}),
    # Members, tokens, audit: signed-in owners and admins only, never a token.
    ("member-list", "get"): Rule(200, None, A),
    ("member-list", "post"): Rule(201, None, A, lambda w: {"username": "newbie", "role": "viewer"}),
    ("member-detail", "get"): Rule(200, None, A),
    ("member-detail", "put"): Rule(200, None, A, lambda w: {"role": "editor"}),
    ("member-detail", "patch"): Rule(200, None, A, lambda w: {"role": "editor"}),
    ("member-detail", "delete"): Rule(204, None, A),
    ("token-list", "get"): Rule(200, None, A),
    ("token-list", "post"): Rule(201, None, A, lambda w: {"name": "ci", "scope": "read"}),
    ("token-detail", "get"): Rule(200, None, A),
    ("token-revoke", "post"): Rule(200, None, A),
    ("audit-event-list", "get"): Rule(200, None, A),
    ("audit-event-detail", "get"): Rule(200, None, A),
    # Configuration: read tokens read, config tokens change; members by role.
    ("host-list", "get"): Rule(200, "read", V),
    ("host-list", "post"): Rule(201, "config", E, lambda w: {"name": "new-host"}),
    ("host-detail", "get"): Rule(200, "read", V),
    ("host-detail", "put"): Rule(200, "config", E, lambda w: {"name": "renamed-host"}),
    ("host-detail", "patch"): Rule(200, "config", E, lambda w: {"environment": "staging"}),
    ("host-detail", "delete"): Rule(204, "config", A),
    ("service-list", "get"): Rule(200, "read", V),
    ("service-list", "post"): Rule(201, "config", E, lambda w: {"host": w.host_id, "name": "worker",
                                                                "kind": "queue"}),
    ("service-detail", "get"): Rule(200, "read", V),
    ("service-detail", "put"): Rule(200, "config", E, lambda w: {"host": w.host_id, "name": "worker-2",
                                                                 "kind": "queue"}),
    ("service-detail", "patch"): Rule(200, "config", E, lambda w: {"description": "x"}),
    ("service-detail", "delete"): Rule(204, "config", A),
    ("dependency-list", "get"): Rule(200, "read", V),
    ("dependency-list", "post"): Rule(201, "config", E, lambda w: w.new_edge),
    ("dependency-detail", "get"): Rule(200, "read", V),
    ("dependency-detail", "delete"): Rule(204, "config", E),
    # Saved dashboards: read tokens read, config tokens change; editors write, admins delete.
    ("dashboard-list", "get"): Rule(200, "read", V),
    ("dashboard-list", "post"): Rule(201, "config", E, lambda w: {"name": "Ops", "widgets": [
        {"metric": "cpu_usage_active", "labels": 'env="prod"', "agg": "p95", "range": "6h"}]}),
    ("dashboard-detail", "get"): Rule(200, "read", V),
    ("dashboard-detail", "put"): Rule(200, "config", E, lambda w: {"name": "Ops 2", "widgets": []}),
    ("dashboard-detail", "patch"): Rule(200, "config", E, lambda w: {"description": "x"}),
    ("dashboard-detail", "delete"): Rule(204, "config", A),
    # Alerting configuration: read tokens read, config tokens change; editors write, admins delete rules.
    ("alert-channel-list", "get"): Rule(200, "read", V),
    ("alert-channel-list", "post"): Rule(201, "config", E, lambda w: {"name": "ops", "kind": "webhook",
                                                                      "url": "https://hooks.example.com/x"}),
    ("alert-channel-detail", "get"): Rule(200, "read", V),
    ("alert-channel-detail", "put"): Rule(200, "config", E, lambda w: {"name": "ops-2", "kind": "email",
                                                                       "address": "ops@example.com"}),
    ("alert-channel-detail", "patch"): Rule(200, "config", E, lambda w: {"enabled": False}),
    ("alert-channel-detail", "delete"): Rule(204, "config", A),
    ("alert-channel-rotate-secret", "post"): Rule(200, "config", E),
    ("alert-rule-list", "get"): Rule(200, "read", V),
    ("alert-rule-list", "post"): Rule(201, "config", E, lambda w: {
        "name": "high cpu", "kind": "threshold", "metric": "cpu", "reducer": "avg", "window": 60,
        "comparator": ">", "critical": 90, "for": 0, "channels": [str(w.objects["alert-channel"].public_id)]}),
    ("alert-rule-detail", "get"): Rule(200, "read", V),
    ("alert-rule-detail", "put"): Rule(200, "config", E, lambda w: {
        "name": "high cpu 2", "kind": "threshold", "metric": "cpu", "reducer": "max", "window": 120,
        "comparator": ">", "critical": 95}),
    ("alert-rule-detail", "patch"): Rule(200, "config", E, lambda w: {"critical": 80}),
    ("alert-rule-detail", "delete"): Rule(204, "config", A),
    ("alert-list", "get"): Rule(200, "read", V),
    ("alert-detail", "get"): Rule(200, "read", V),
    ("alert-acknowledge", "post"): Rule(200, "config", E),
    ("alert-resolve", "post"): Rule(200, "config", E),
    # Inbound integrations: configured like rules; their doors take the integration's own token only.
    ("integration-list", "get"): Rule(200, "read", V),
    ("integration-list", "post"): Rule(201, "config", E, lambda w: {"name": "new-integration", "kind": "generic"}),
    ("integration-detail", "get"): Rule(200, "read", V),
    ("integration-detail", "put"): Rule(200, "config", E, lambda w: {"name": "renamed", "kind": "alertmanager"}),
    ("integration-detail", "patch"): Rule(200, "config", E, lambda w: {"enabled": False}),
    ("integration-detail", "delete"): Rule(204, "config", A),
    ("integration-rotate-token", "post"): Rule(200, "config", E),
    ("integration-alertmanager", "post"): Rule(200, None, None, raw=_json({"version": "4", "alerts": []})),
    ("integration-generic", "post"): Rule(200, None, None, raw=_json([])),
    ("integration-alertmanager-token", "post"): Rule(200, "any", None, raw=_json({"version": "4", "alerts": []}),
                                                     no_token=200),
    ("integration-generic-token", "post"): Rule(200, "any", None, raw=_json([]), no_token=200),
    ("silence-list", "get"): Rule(200, "read", V),
    ("silence-list", "post"): Rule(201, "config", E, lambda w: {"matchers": 'alertname="cpu"', "duration": 3600}),
    ("silence-detail", "get"): Rule(200, "read", V),
    ("silence-detail", "delete"): Rule(204, "config", E),
    ("maintenance-window-list", "get"): Rule(200, "read", V),
    ("maintenance-window-list", "post"): Rule(201, "config", E, lambda w: {
        "name": "patching", "starts_at": "2026-03-01T02:30:00", "duration": 3600, "rrule": "FREQ=WEEKLY;BYDAY=SU",
        "time_zone": "Europe/Berlin", "hosts": [w.host_id]}),
    ("maintenance-window-detail", "get"): Rule(200, "read", V),
    ("maintenance-window-detail", "put"): Rule(200, "config", E, lambda w: {
        "name": "patching-2", "starts_at": "2026-03-01T01:30:00Z", "duration": 60}),
    ("maintenance-window-detail", "patch"): Rule(200, "config", E, lambda w: {"comment": "x"}),
    ("maintenance-window-detail", "delete"): Rule(204, "config", E),
    # On-call schedules: read tokens read (who is on call, shifts), config tokens change; members by role.
    ("schedule-list", "get"): Rule(200, "read", V),
    ("schedule-list", "post"): Rule(201, "config", E, lambda w: {
        "name": "new", "time_zone": "UTC", "layers": [{"rotation": "daily", "handoff_time": "09:00",
                                                        "start_date": "2026-01-01", "members": ["target"]}]}),
    ("schedule-detail", "get"): Rule(200, "read", V),
    ("schedule-detail", "put"): Rule(200, "config", E, lambda w: {"name": "renamed", "time_zone": "UTC"}),
    ("schedule-detail", "patch"): Rule(200, "config", E, lambda w: {"description": "x"}),
    ("schedule-detail", "delete"): Rule(204, "config", A),
    ("schedule-oncall", "get"): Rule(200, "read", V),
    ("schedule-shifts", "get"): Rule(200, "read", V),
    ("schedule-overrides", "get"): Rule(200, "read", V),
    ("schedule-overrides", "post"): Rule(201, "config", E, lambda w: {
        "user": "target", "start": "2026-05-01T10:00:00Z", "end": "2026-05-01T11:00:00Z"}),
    ("schedule-override", "get"): Rule(200, "read", V),
    ("schedule-override", "patch"): Rule(200, "config", E, lambda w: {"end": "2026-05-01T13:00:00Z"}),
    ("schedule-override", "delete"): Rule(204, "config", E),
    # Escalation: policies and routes like rules; contact methods are a person's own (admins and tokens manage
    # everyone's); the signed link is its own credential.
    ("escalation-policy-list", "get"): Rule(200, "read", V),
    ("escalation-policy-list", "post"): Rule(201, "config", E, lambda w: {
        "name": "new-policy", "repeat_count": 2, "steps": [{"action": "notify_user", "users": ["target"]}]}),
    ("escalation-policy-detail", "get"): Rule(200, "read", V),
    ("escalation-policy-detail", "put"): Rule(200, "config", E, lambda w: {"name": "renamed-policy"}),
    ("escalation-policy-detail", "patch"): Rule(200, "config", E, lambda w: {"repeat_count": 3}),
    ("escalation-policy-detail", "delete"): Rule(204, "config", A),
    ("escalation-route-list", "get"): Rule(200, "read", V),
    ("escalation-route-list", "post"): Rule(201, "config", E, lambda w: {
        "rule": str(w.objects["unrouted-rule"].public_id), "policy": str(w.objects["escalation-policy"].public_id)}),
    ("escalation-route-detail", "get"): Rule(200, "read", V),
    ("escalation-route-detail", "put"): Rule(200, "config", E, lambda w: {
        "rule": str(w.objects["alert-rule"].public_id), "policy": str(w.objects["escalation-policy"].public_id)}),
    ("escalation-route-detail", "patch"): Rule(200, "config", E, lambda w: {
        "policy": str(w.objects["escalation-policy"].public_id)}),
    ("escalation-route-detail", "delete"): Rule(204, "config", A),
    ("escalation-group-route-list", "get"): Rule(200, "read", V),
    ("escalation-group-route-list", "post"): Rule(201, "config", E, lambda w: {
        "name": "new-group-route", "matchers": {"team": "db"},
        "policy": str(w.objects["escalation-policy"].public_id)}),
    ("escalation-group-route-detail", "get"): Rule(200, "read", V),
    ("escalation-group-route-detail", "put"): Rule(200, "config", E, lambda w: {
        "name": "renamed-group-route", "policy": str(w.objects["escalation-policy"].public_id)}),
    ("escalation-group-route-detail", "patch"): Rule(200, "config", E, lambda w: {"position": 3}),
    ("escalation-group-route-detail", "delete"): Rule(204, "config", A),
    ("group-escalation-list", "get"): Rule(200, "read", V),
    ("group-escalation-detail", "get"): Rule(200, "read", V),
    ("group-escalation-acknowledge", "post"): Rule(200, "config", E),
    ("group-escalation-resolve", "post"): Rule(200, "config", E),
    ("contact-method-list", "get"): Rule(200, "read", V),
    ("contact-method-list", "post"): Rule(201, "config", A, lambda w: {
        "user": "target", "kind": "email", "address": "target@example.com"}),
    ("contact-method-detail", "get"): Rule(200, "read", A),
    ("contact-method-detail", "put"): Rule(200, "config", A, lambda w: {"kind": "email", "address": "t2@example.com"}),
    ("contact-method-detail", "patch"): Rule(200, "config", A, lambda w: {"delay_seconds": 60}),
    ("contact-method-detail", "delete"): Rule(204, "config", A),
    ("contact-method-send-verification", "post"): Rule(200, "config", A),
    ("escalation-contact-verification", "get"): Rule(200, "any", None, no_token=200),
    ("escalation-contact-verification", "post"): Rule(200, "any", None, no_token=200),
    ("oncall-assignment-list", "get"): Rule(200, "read", V),
    ("escalation-link", "get"): Rule(200, "any", None, no_token=200),
    ("escalation-link", "post"): Rule(200, "any", None, no_token=200),
    # Calendar feeds belong to a person: sessions only; the world's feed is someone else's, hence 404.
    ("calendar-feed-list", "get"): Rule(200, None, V),
    ("calendar-feed-list", "post"): Rule(201, None, V),
    ("calendar-feed-detail", "delete"): Rule(404, None, V),
    # The feed itself: the signed URL is the credential, for any caller.
    ("schedule-calendar-feed", "get"): Rule(200, "any", None, no_token=200),
    # Metric reads.
    ("metrics", "get"): Rule(200, "read", V),
    ("metrics-latest", "get"): Rule(200, "read", V),
    ("metrics-series", "get"): Rule(200, "read", V),
    ("seed-metrics", "get"): Rule(200, "read", V, query={"node_id": NODE}),
    # Ingest doors: ingest tokens only; they know no sessions.
    ("metrics", "post"): Rule(200, **INGEST_DOOR, raw=_json([{"name": "door_test", "value": 1, "host": "h1"}])),
    ("metrics-write", "post"): Rule(204, **INGEST_DOOR, raw=_line_protocol),
    ("metrics-prom-write", "post"): Rule(204, **INGEST_DOOR, raw=_remote_write),
    ("metrics-collectd", "post"): Rule(200, **INGEST_DOOR, raw=_json(_collectd)),
    ("metrics-agent", "post"): Rule(200, **INGEST_DOOR, raw=_json({"load1": 0.5})),
    ("influx-write", "post"): Rule(204, **INGEST_DOOR, raw=_line_protocol),
    ("influx-v2-write", "post"): Rule(204, **INGEST_DOOR, raw=_line_protocol),
    ("probe-push", "post"): Rule(200, **INGEST_DOOR, raw=_json(_probe)),
    # InfluxDB handshakes: /ping needs nothing; /query checks credentials only when some are sent.
    ("influx-ping", "get"): Rule(204, "any", None, no_token=204),
    ("influx-query", "get"): Rule(200, **INGEST_DOOR, query={"q": "CREATE DATABASE telegraf"}, no_token=200),
    ("influx-query", "post"): Rule(200, **INGEST_DOOR, query={"q": "CREATE DATABASE telegraf"}, no_token=200),
    # Logs and events: POST writes (ingest doors), GET searches, on one path each (like /api/v1/metrics).
    ("logs", "get"): Rule(200, "read", V),
    ("logs", "post"): Rule(200, **INGEST_DOOR, raw=_json([{"message": "door test"}])),
    ("events", "get"): Rule(200, "read", V),
    ("events", "post"): Rule(200, **INGEST_DOOR, raw=_json([{"title": "door test"}])),
    # Log retention: read like the organization (read tokens, viewers), changed by signed-in admins only.
    ("logs-retention", "get"): Rule(200, "read", V),
    ("logs-retention", "patch"): Rule(200, None, A, lambda w: {"logs_days": 7}),
    ("logs-retention", "put"): Rule(200, None, A, lambda w: {"logs_days": 7, "events_days": 30}),
    # The Elasticsearch bulk API, and the handshakes shippers make before it (apps/logs/elastic.py).
    ("logs-bulk", "post"): Rule(200, **INGEST_DOOR, raw=_bulk),
    ("es-bulk", "post"): Rule(200, **INGEST_DOOR, raw=_bulk),
    ("es-index-bulk", "post"): Rule(200, **INGEST_DOOR, raw=_bulk),
    ("es-cat-health", "get"): Rule(200, "any", None, no_token=200),
    ("es-cluster-health", "get"): Rule(200, "any", None, no_token=200),
    ("es-license", "get"): Rule(200, "any", None, no_token=200),
    # "/" is also the home page: the version JSON to a caller with a token, the page (a redirect) otherwise.
    ("site-root", "get"): Rule(200, "any", None, no_token=302),
}


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _view_methods(callback: Any) -> tuple[str, ...] | None:
    """The methods a DRF view routes; None for a plain Django view (RULES lists its methods)."""
    cls = getattr(callback, "cls", None)
    if cls is None or not issubclass(cls, APIView):
        return None
    allowed = [m for m in METHODS if m in cls.http_method_names]
    actions = getattr(callback, "actions", None)
    if actions is not None:
        return tuple(m for m in allowed if m in actions)
    return tuple(m for m in allowed if hasattr(cls, m))


def api_endpoints() -> dict[str, tuple[str, ...] | None]:
    """URL name -> routed methods, for every pattern under /api/, every DRF view and every ingest door."""
    found: dict[str, tuple[str, ...] | None] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        callback = pattern.callback
        is_drf = isinstance(getattr(callback, "cls", None), type) and issubclass(callback.cls, APIView)
        if route.startswith("api/") or is_drf or callback.__module__ in ("apps.metrics.views", "apps.logs.elastic"):
            assert pattern.name, f"unnamed API route {route}: name it so it can be classified here"
            found[pattern.name] = _view_methods(callback)
    return found


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name, methods in sorted(api_endpoints().items()):
        listed = methods if methods is not None else tuple(m for n, m in RULES if n == name)
        cases.extend((name, method) for method in (listed or ("get",)))
    return cases


CASES = _cases()


def test_every_rule_names_a_routed_endpoint():
    """The other direction: no rule outlives its endpoint (a stale rule would hide a renamed one)."""
    routed = api_endpoints()
    stale = [(n, m) for n, m in RULES if n not in routed or (routed[n] is not None and m not in routed[n])]
    assert stale == []


# Endpoints acting on one object that are not "<basename>-detail": name -> the object's basename.
OBJECT_ACTIONS = {"token-revoke": "token", "alert-channel-rotate-secret": "alert-channel",
                  "alert-acknowledge": "alert", "alert-resolve": "alert", "integration-rotate-token": "integration",
                  "contact-method-send-verification": "contact-method",
                  "group-escalation-acknowledge": "group-escalation", "group-escalation-resolve": "group-escalation"}
# Integration doors -> the world object whose door it is (the "-token" variants carry its token in the path).
INTEGRATION_DOORS = {"integration-alertmanager": "integration", "integration-generic": "generic-integration"}


@dataclass
class World:
    """One organization with something behind every endpoint, plus the caller's credentials."""

    org: Any
    objects: dict[str, Any]
    host_id: str
    new_edge: dict[str, str]

    def path(self, name: str) -> str:
        door = name.removesuffix("-token")
        if door in INTEGRATION_DOORS:
            key = INTEGRATION_DOORS[door]
            kwargs = {"public_id": self.objects[key].public_id}
            if name.endswith("-token"):
                kwargs["token"] = self.objects[f"{key}-token"]
            return reverse(name, kwargs=kwargs)
        if name.endswith("-detail") or name in OBJECT_ACTIONS:
            basename = OBJECT_ACTIONS.get(name) or name.rsplit("-", 1)[0]
            return reverse(name, kwargs={"public_id": self.objects[basename].public_id})
        if name in ("schedule-oncall", "schedule-shifts", "schedule-overrides"):
            return reverse(name, kwargs={"public_id": self.objects["schedule"].public_id})
        if name == "schedule-override":
            return reverse(name, kwargs={"public_id": self.objects["schedule"].public_id,
                                         "override_id": self.objects["override"].public_id})
        if name == "schedule-calendar-feed":
            return reverse(name, kwargs={"token": feed_token(self.objects["calendar-feed"])})
        if name == "escalation-contact-verification":
            return reverse(name, kwargs={"token": verification.make_token(self.objects["contact-method"])})
        if name == "escalation-link":
            return reverse(name, kwargs={"token": make_token(
                alert_public_id=str(self.objects["alert"].public_id), user_id=self.objects["pager"].pk,
                action="acknowledge")})
        if name == "metrics-agent":
            return reverse(name, kwargs={"host": "h1"})
        if name == "es-index-bulk":
            return reverse(name, kwargs={"index": "fiber-logs"})
        return reverse(name)


@pytest.fixture
def world(org: Any, settings: Any) -> World:
    settings.FIBERSTACK_INGEST_MAX_PAST_S = 20 * 365 * 86400  # the remote_write fixture is from 2025
    a, b, c = (HostFactory(organization=org, name=n) for n in ("a", "b", "c"))
    service = ServiceFactory(organization=org, host=a)
    edge = ServiceDependency.objects.create(organization=org, upstream_host=a, downstream_host=b)
    member = MembershipFactory(organization=org, user=UserFactory(username="target"), role=Role.VIEWER)
    token, _ = issue_token(organization=org, name="target-token", actor=None)
    UserFactory(username="newbie")
    SeriesFactory(organization=org, name="probe_latency_ms", labels={"node_id": NODE})
    channel = NotificationChannelFactory(organization=org)
    rule = AlertRuleFactory(organization=org)
    schedule = OnCallScheduleFactory(organization=org)
    ScheduleLayerFactory(schedule=schedule, priority=0, users=[member.user])
    override = ScheduleOverrideFactory(schedule=schedule, user=member.user)
    feed = create_calendar_feed(organization=org, user=member.user, actor=None)
    objects = {"member": member, "token": token, "host": a, "service": service, "dependency": edge,
               "schedule": schedule, "override": override, "calendar-feed": feed,
               "audit-event": AuditEvent.objects.filter(organization=org).latest("id"),
               "alert-channel": channel, "alert-rule": rule, "alert": AlertFactory(organization=org, rule=rule),
               "silence": SilenceFactory(organization=org),
               "maintenance-window": MaintenanceWindowFactory(organization=org)}
    policy = EscalationPolicyFactory(organization=org)
    objects.update({
        "escalation-policy": policy, "unrouted-rule": AlertRuleFactory(organization=org),
        "escalation-route": RulePolicy.objects.create(organization=org, rule=rule, policy=policy),
        "contact-method": contact(org, member.user, kind="email", verified=False),
        "escalation-group-route": GroupRoute.objects.create(organization=org, name="storage", policy=policy,
                                                            matchers={"team": "storage"}),
        # Group escalations are addressed by their group's id.
        "group-escalation": escalating_group(org, policy),
        "pager": MembershipFactory(organization=org, user=UserFactory(username="pager"), role=Role.EDITOR).user})
    objects["dashboard"] = SavedDashboardFactory(organization=org)
    objects["integration"], objects["integration-token"] = make_integration(org)
    objects["generic-integration"], objects["generic-integration-token"] = make_integration(
        org, kind="generic", name="scripts")
    return World(org, objects, str(a.public_id), {"upstream_host": str(b.public_id),
                                                  "downstream_host": str(c.public_id)})


def _client(caller: str, world: World) -> APIClient:
    client = APIClient()
    if caller in TOKENS:
        _, plaintext = issue_token(organization=world.org, name=f"caller-{caller}", scope=caller, actor=None)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    elif caller != ANON:
        client.force_login(MembershipFactory(organization=world.org, user=UserFactory(username=f"u-{caller}"),
                                             role=caller).user)
    return client


def call(client: APIClient, rule: Rule, name: str, method: str, world: World) -> Any:
    path = world.path(name)
    if rule.query:
        path += "?" + urlencode(rule.query)
    if rule.raw is not None:
        body, meta = rule.raw()
        return client.generic(method.upper(), path, data=body, **meta)
    if rule.body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, rule.body(world), format="json")


def _answers(world: World, name: str, method: str, callers: tuple[str, ...]) -> dict[str, Any]:
    """Each caller's status on a fresh world: every call runs in a savepoint that is rolled back (caches
    fill only on commit, so nothing of one call leaks into the next)."""
    rule = RULES[(name, method)]
    answers: dict[str, Any] = {}
    for caller in callers:
        with transaction.atomic():
            response = call(_client(caller, world), rule, name, method, world)
            answers[caller] = response.status_code
            if response.status_code == 403 and caller in TOKENS:
                refusal = response.json()  # JSON, and it names the scope needed
                if rule.scope is not None and rule.scope not in json.dumps(refusal):
                    answers[caller] = (403, refusal)
            transaction.set_rollback(True)
    return answers


CALLER_KINDS = {"tokens": (ANON, *TOKENS), "members": ROLE_ORDER}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(CALLER_KINDS))
@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{m}-{n}" for n, m in CASES])
def test_every_endpoint_answers_every_caller_exactly(world, kind, name, method):
    if (name, method) not in RULES:
        pytest.fail(f"{method.upper()} {name} is not classified: add it to RULES with the scope and role it needs")
    callers = CALLER_KINDS[kind]
    expected = {caller: RULES[(name, method)].expected(caller) for caller in callers}
    assert _answers(world, name, method, callers) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("delete", "/api/v1/series"), ("post", "/api/v1/metrics/latest"), ("delete", "/api/v1/logs/retention"),
])
def test_a_method_a_read_view_does_not_handle_is_a_405_not_a_403(api_client, owner, method, path):
    # An owner sending DELETE to a read-only view was told "Your role ... does not allow this action" (found by
    # the fuzz test's coverage phase, which probes undocumented methods).
    response = getattr(api_client(user=owner), method)(path)
    assert response.status_code == 405, response.content
    assert response.json()["detail"].startswith("Method ")
