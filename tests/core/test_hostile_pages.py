"""Hostile input at every server-rendered page and form: never a 5xx, a 4xx names what was wrong, and
another organization's object ids are 404s.

The routes come from the URL resolver, so a page added later is walked without anyone listing it; a route
whose path this module cannot fill in fails (add it to ``OBJECTS``). The parameters come from the views
themselves: each request records which keys the view read from ``request.GET`` / ``request.POST``
(``QueryDict.get``, ``[]``, ``getlist``, ``in``), and those are the ones filled with hostile values -- a
filter or form field added later is fuzzed too. Values are sent percent-encoded exactly as written, so
invalid UTF-8, ``%uD800`` and a bare ``%`` reach Django as a browser or a script could send them.

Each POST runs in a savepoint that is rolled back, so every request sees the same objects (a delete does
not hide the next request's bug behind a 404)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from apps.accounts.models import UserSession
from tests.alerts.factories import AlertFactory, AlertRuleFactory, NotificationChannelFactory, SilenceFactory
from tests.alerts.factories_suppression import MaintenanceWindowFactory
from tests.dashboards.saved_factories import SavedDashboardFactory
from tests.escalation.factories import OnCallScheduleFactory, ScheduleOverrideFactory
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db

#: Not pages: the admin, the JSON API (schemathesis covers it) and the agents' ingest doors
#: (tests/metrics/test_ingest_hostile.py).
EXCLUDED_PREFIXES = ("admin/", "api/")
EXCLUDED_URLCONFS = ("apps.metrics.compat_urls", "apps.logs.compat_urls")

LONG = "a" * 100_000
#: (label, the value exactly as it goes on the wire, percent-encoded where it must be).
HOSTILE: list[tuple[str, str]] = [
    ("empty", ""),
    ("negative", "-1"),
    ("huge", "99999999999999999999999"),
    ("bigint+1", "9223372036854775808"),
    ("float", "1.5"),
    ("exponent", "1e20"),
    ("nan", "NaN"),
    ("inf", "inf"),
    ("word", "abc"),
    ("year 1", "0001-01-01T00:00"),
    ("year 9999", "9999-12-31T23:59"),
    ("year 99999", "99999-01-01T00:00"),
    ("day 30 Feb", "2026-02-30"),
    ("epoch ms", "1767225600000"),
    ("duration", "-5m"),
    ("invalid uuid", "not-a-uuid"),
    ("unknown uuid", str(uuid.UUID(int=1))),
    ("long", LONG),
    ("invalid utf-8", "%ff%fe"),
    ("bare percent", "%"),
    ("%u surrogate", "%uD800"),
    ("utf-8 surrogate", "%ED%A0%80"),
    ("nul", "%00"),
    ("control", "%01%1b%7f"),
    ("regex", "(a|a)*b["),
    ("lookahead", "(%3F%3Dx)"),
    ("markup", "%3Cscript%3E%22'%26"),
    ("json list", "%5B1%2C2%5D"),
    ("emoji rtl", "%F0%9F%99%82%E2%80%AE"),
    ("colon", "%3A"),
]
#: The subset tried one form field at a time on top of a valid form (what reaches the services).
PER_FIELD = ("huge", "bigint+1", "negative", "nan", "inf", "exponent", "year 1", "year 9999", "year 99999",
             "invalid uuid", "long", "invalid utf-8", "nul", "regex", "lookahead", "json list", "colon")
UNKNOWN = "zz_unknown"


# --- objects a path needs ----------------------------------------------------------------------------------

def _session(org: Any, owner: Any) -> Any:
    store = SessionStore()
    store.create()
    return UserSession.objects.create(session_id=store.session_key, user=owner, last_seen_at=timezone.now())


#: Route name -> a factory of the object its ``<uuid:public_id>`` names, made in the given organization.
OBJECTS: dict[str, Callable[[Any, Any], Any]] = {
    "hosts:detail": lambda org, owner: HostFactory(organization=org),
    "alerts:detail": lambda org, owner: AlertFactory(organization=org),
    "alerts:acknowledge": lambda org, owner: AlertFactory(organization=org),
    "alerts:resolve": lambda org, owner: AlertFactory(organization=org),
    "alerts:silence": lambda org, owner: AlertFactory(organization=org),
    "alerts:rule-detail": lambda org, owner: AlertRuleFactory(organization=org),
    "alerts:rule-edit": lambda org, owner: AlertRuleFactory(organization=org),
    "alerts:rule-delete": lambda org, owner: AlertRuleFactory(organization=org),
    "alerts:channel-detail": lambda org, owner: NotificationChannelFactory(organization=org),
    "alerts:channel-edit": lambda org, owner: NotificationChannelFactory(organization=org),
    "alerts:channel-rotate-secret": lambda org, owner: NotificationChannelFactory(organization=org),
    "alerts:channel-delete": lambda org, owner: NotificationChannelFactory(organization=org),
    "alerts:silence-expire": lambda org, owner: SilenceFactory(organization=org),
    "alerts:window-edit": lambda org, owner: MaintenanceWindowFactory(organization=org),
    "alerts:window-delete": lambda org, owner: MaintenanceWindowFactory(organization=org),
    "escalation:override-delete": lambda org, owner: ScheduleOverrideFactory(
        schedule=OnCallScheduleFactory(organization=org), user=owner),
    "dashboards:saved:detail": lambda org, owner: SavedDashboardFactory(organization=org),
    "dashboards:saved:edit": lambda org, owner: SavedDashboardFactory(organization=org),
    "dashboards:saved:delete": lambda org, owner: SavedDashboardFactory(organization=org),
    "accounts:session_revoke": _session,
}
#: Path parameters that name no object: a fixed value reaches the view (the reset link's parts).
PLAIN_KWARGS = {"uidb64": "MQ", "token": "bad-token"}


def _rule_form() -> dict[str, str]:
    return {"name": "cpu high", "kind": "threshold", "enabled": "on", "metric": "cpu_usage_active",
            "label_matchers": 'cpu="total"', "reducer": "avg", "window_seconds": "300", "comparator": ">",
            "critical": "90", "warning": "80", "for_seconds": "60", "keep_firing_for_seconds": "0",
            "anomaly_method": "mean_stddev", "anomaly_k": "3", "training_seconds": "604800",
            "repeat_interval_seconds": "14400", "evaluation_interval_seconds": "10", "labels": "team=ops",
            "group_by": "host"}


def _window_form() -> dict[str, str]:
    return {"name": "patching", "starts_at": "2026-06-01T02:00", "duration_minutes": "60",
            "time_zone": "Europe/Berlin", "rrule": "FREQ=WEEKLY;BYDAY=SU", "until": "2026-12-01T02:00",
            "host_tags": "role=db"}


def _dashboard_form() -> dict[str, str]:
    return {"name": "Fleet", "description": "", "widgets-TOTAL_FORMS": "1", "widgets-INITIAL_FORMS": "0",
            "widgets-MIN_NUM_FORMS": "0", "widgets-MAX_NUM_FORMS": "1000", "widgets-0-title": "CPU",
            "widgets-0-metric": "cpu_usage_active", "widgets-0-labels": 'cpu="total"', "widgets-0-agg": "avg",
            "widgets-0-range": "1h", "widgets-0-width": "6", "widgets-0-ORDER": "1"}


def _override_form(world: World) -> dict[str, str]:
    return {"schedule": str(world.schedule.public_id), "user": str(world.owner.pk),
            "start": "2026-06-01T09:00", "end": "2026-06-01T18:00"}


#: Route name -> a valid POST body, so one hostile field at a time gets past the others to the services.
VALID_POSTS: dict[str, Callable[[World], dict[str, str]]] = {
    "alerts:rule-create": lambda world: _rule_form(),
    "alerts:rule-edit": lambda world: _rule_form(),
    "alerts:channel-create": lambda world: {"name": "ops", "kind": "webhook", "url": "https://example.com/h",
                                            "enabled": "on", "rate_limit_per_minute": "10", "headers": "X-A: b"},
    "alerts:channel-edit": lambda world: {"name": "ops", "kind": "webhook", "url": "https://example.com/h",
                                          "enabled": "on", "rate_limit_per_minute": "10", "headers": "X-A: b"},
    "alerts:silence-create": lambda world: {"matchers": 'alertname="cpu"', "starts_at": "2030-06-01T00:00",
                                            "duration": "3600", "ends_at": "2030-06-02T00:00", "comment": "x"},
    "alerts:silence": lambda world: {"duration": "3600", "comment": "x", "next": "/"},
    "alerts:window-create": lambda world: _window_form(),
    "alerts:window-edit": lambda world: _window_form(),
    "escalation:override-create": _override_form,
    "dashboards:saved:create": lambda world: _dashboard_form(),
    "dashboards:saved:edit": lambda world: _dashboard_form(),
    "organizations:tokens": lambda world: {"name": "agent", "scope": "ingest", "expires_at": "2027-01-31 00:00"},
}


# --- the routes --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    name: str  # namespaced, for reverse()
    route: str  # the path pattern, for messages
    kwargs: tuple[str, ...]  # the path's parameters


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "", kwargs: tuple[str, ...] = ()) -> Iterator[Route]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        names = kwargs + tuple(getattr(entry.pattern, "converters", {}))
        if isinstance(entry, URLResolver):
            urlconf = getattr(entry.urlconf_name, "__name__", entry.urlconf_name)
            if route.startswith(EXCLUDED_PREFIXES) or urlconf in EXCLUDED_URLCONFS:
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, route, inner, names)
        elif isinstance(entry, URLPattern) and not route.startswith(EXCLUDED_PREFIXES):
            if entry.name is None:
                pytest.fail(f"route {route!r} has no name: reverse() cannot build it")
            yield Route(namespace + entry.name, route, names)


ROUTES = sorted(_walk(get_resolver().url_patterns), key=lambda r: r.name)


def test_the_walk_finds_the_pages_of_every_app() -> None:
    """A guard on the walker itself: if it stopped descending into includes this module would pass empty."""
    names = {route.name for route in ROUTES}
    assert {"hosts:list", "alerts:list", "logs:search", "dashboards:overview", "dashboards:saved:edit",
            "escalation:oncall", "alerts:rule-create", "alerts:silences", "alerts:channels", "audit:list",
            "audit:export", "dashboards:overview-status", "accounts:login", "accounts:security"} <= names
    assert not [name for name in names if name.startswith(("admin", "es-", "influx"))]


# --- recording which parameters a view reads ---------------------------------------------------------------

@contextmanager
def _recording_reads() -> Iterator[dict[str, set[str]]]:
    """Within the block, every key looked up in any QueryDict (GET or POST: a POST's reads of the query
    string are fuzzed in its body too, which the GET phase complements)."""
    seen: dict[str, set[str]] = {"keys": set()}
    originals = {name: getattr(MultiValueDict, name) for name in ("get", "__getitem__", "getlist", "__contains__")}

    def wrap(name: str) -> Callable[..., Any]:
        original = originals[name]

        def method(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(key, str):
                seen["keys"].add(key)
            return original(self, key, *args, **kwargs)

        return method

    for name in originals:
        setattr(QueryDict, name, wrap(name))
    try:
        yield seen
    finally:
        for name in originals:
            delattr(QueryDict, name)


# --- requests ----------------------------------------------------------------------------------------------

@dataclass
class World:
    org: Any
    other_org: Any
    owner: Any
    schedule: Any


@dataclass
class Outcome:
    status: int
    text: str  # what the response says is wrong (error text, form errors, the body of a non-page answer)
    error: str | None = None  # the exception a 500 raised


def _error_text(response: Any) -> str:
    parts: list[str] = []
    context = response.context
    if context is not None:
        for key in ("form", "formset"):
            form = context.get(key)
            if form is None:
                continue
            errors = getattr(form, "errors", None)
            if isinstance(errors, list):  # a formset: one dict per form, plus its own errors
                parts += [json.dumps(e) for e in errors] + [f"__all__: {e}" for e in form.non_form_errors()]
            elif errors:
                parts.append(json.dumps(errors))
        if context.get("error"):
            parts.append(str(context["error"]))
        parts += [str(message) for message in context.get("messages", [])]
    if not response.get("Content-Type", "").startswith("text/html"):
        body = b"".join(response.streaming_content) if response.streaming else response.content
        parts.append(body.decode("utf-8", "replace"))
    return "\n".join(parts)


def _send(client: Client, method: str, url: str, body: str, world: World) -> Outcome:
    try:
        with transaction.atomic():
            if method == "GET":
                response = client.get(f"{url}?{body}" if body else url, headers={"accept": "text/html"})
            else:
                response = client.post(url, body, content_type="application/x-www-form-urlencoded",
                                       headers={"accept": "text/html"})
            outcome = Outcome(response.status_code, _error_text(response))
            transaction.set_rollback(True)
    except Exception as exc:  # the finding itself: the test client re-raises what made a 500
        return Outcome(500, "", f"{type(exc).__name__}: {str(exc)[:300]}")
    if "_auth_user_id" not in client.session:  # a logout or "sign out other sessions" that was not undone
        client.force_login(world.owner)
    return outcome


def _encode(pairs: list[tuple[str, str]]) -> str:
    """Names quoted, values as written (already on-the-wire form)."""
    return "&".join(f"{quote(name, safe='')}={value}" for name, value in pairs)


def _valid(data: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, quote(value, safe="")) for name, value in data.items()]


def _reads(client: Client, method: str, url: str, base: list[tuple[str, str]], world: World) -> set[str]:
    """The parameters the view reads, found by asking it twice: plain, then with everything it read set
    (a view may read some only when others are present)."""
    keys: set[str] = set()
    for _ in range(2):
        pairs = base + [(key, "1") for key in sorted(keys) if key not in dict(base)]
        with _recording_reads() as seen:
            _send(client, method, url, _encode(pairs), world)
        new = seen["keys"] - keys
        keys |= seen["keys"]
        if not new:
            break
    # The session, CSRF and messages machinery read these on every request; they are not the view's.
    return {key for key in keys if key not in ("csrfmiddlewaretoken",)}


@dataclass
class Finding:
    method: str
    params: tuple[str, ...]
    value: str
    status: int
    detail: str

    def __str__(self) -> str:
        return f"{self.method} {','.join(self.params)}={self.value!r}: {self.status} {self.detail}"


def _judge(findings: list[Finding], method: str, params: tuple[str, ...], label: str, outcome: Outcome) -> None:
    if outcome.status >= 500:
        findings.append(Finding(method, params, label, outcome.status, outcome.error or outcome.text[:200]))
    # A formset's forms name their fields without the prefix: widgets-0-metric is "metric" there.
    elif outcome.status in (400, 422) and params and not any(
            name in outcome.text for name in (*params, *(p.rsplit("-", 1)[-1] for p in params), "__all__")):
        findings.append(Finding(method, params, label, outcome.status, f"4xx not naming it: {outcome.text[:200]!r}"))


@pytest.fixture
def world(org: Any, other_org: Any, owner: Any) -> World:
    return World(org, other_org, owner, OnCallScheduleFactory(organization=org))


def _url(route: Route, world: World, organization: Any) -> str:
    kwargs: dict[str, Any] = {}
    for name in route.kwargs:
        if name == "org_slug":
            kwargs[name] = organization.slug
        elif name in PLAIN_KWARGS:
            kwargs[name] = PLAIN_KWARGS[name]
        elif route.name in OBJECTS:
            kwargs[name] = OBJECTS[route.name](organization, world.owner).public_id
        else:
            pytest.fail(f"{route.route}: nothing fills <{name}>: add {route.name!r} to OBJECTS (or PLAIN_KWARGS)")
    return reverse(route.name, kwargs=kwargs)


def test_the_recorder_sees_the_parameters_views_read(world: World) -> None:
    """A guard on the recording: if it stopped seeing reads, every page would be fuzzed with nothing."""
    client = Client()
    client.force_login(world.owner)
    hosts = _reads(client, "GET", reverse("hosts:list", args=[world.org.slug]), [], world)
    logs = _reads(client, "GET", reverse("logs:search", args=[world.org.slug]), [], world)
    rules = _reads(client, "POST", reverse("alerts:rule-create", args=[world.org.slug]), _valid(_rule_form()), world)
    assert {"q", "tag", "status", "page"} <= hosts
    assert {"start", "end", "cursor", "limit", "level"} <= logs
    assert {"name", "critical", "host_names", "channels", "preview"} <= rules


#: Sent to a view that reads no parameter at all: only what could break Django's own parsing.
UNREAD = ("long", "invalid utf-8", "%u surrogate", "bare percent")
#: (field, value) pairs tried one at a time on top of a valid form, per route: a bounded, derandomized
#: hypothesis sample of every field x PER_FIELD (the rule form alone has ~30 fields). A deeper run, e.g.
#: before a release: HOSTILE_PAGES_EXAMPLES=600 (every pair of the largest form, about 10 minutes).
PER_FIELD_EXAMPLES = int(os.environ.get("HOSTILE_PAGES_EXAMPLES", "20"))


def _all_at_once(client: Client, method: str, url: str, params: list[str], world: World,
                 findings: list[Finding]) -> None:
    catalogue = HOSTILE if params else [(label, value) for label, value in HOSTILE if label in UNREAD]
    for label, value in catalogue:
        pairs = [(name, value) for name in params] + [(UNKNOWN, value)]
        body = _encode(pairs)
        outcome = _send(client, method, url, body, world)
        if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE and outcome.status in (400, 413):
            continue  # refused as too large as a whole, before any field is read: nothing to name
        _judge(findings, method, tuple(params), label, outcome)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_hostile_parameters_never_crash_a_page(route: Route, world: World) -> None:
    client = Client()
    client.force_login(world.owner)
    url = _url(route, world, world.org)
    findings: list[Finding] = []
    values = dict(HOSTILE)

    get_params = sorted(_reads(client, "GET", url, [], world))
    _all_at_once(client, "GET", url, get_params, world, findings)
    for name in get_params:  # repeated: a view that reads the first and one that reads the last
        pairs = [(name, values["word"]), (name, values["huge"]), (name, "")]
        _judge(findings, "GET", (name,), "repeated", _send(client, "GET", url, _encode(pairs), world))

    base = _valid(VALID_POSTS[route.name](world)) if route.name in VALID_POSTS else []
    probe = _send(client, "POST", url, _encode(base), world)
    if probe.status != 405:
        _judge(findings, "POST", (), "valid form", probe)
        if route.name in VALID_POSTS:  # else one field at a time would only ever meet the others' errors
            assert probe.status == 302 or (probe.status == 200 and not probe.text), (
                f"{route.name}: the valid form of VALID_POSTS is refused: {probe.status} {probe.text[:300]}")
        post_params = sorted(_reads(client, "POST", url, base, world))
        _all_at_once(client, "POST", url, post_params, world, findings)
        if post_params:
            @settings_(max_examples=PER_FIELD_EXAMPLES, derandomize=True, database=None, deadline=None,
                       suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(name=st.sampled_from(post_params), label=st.sampled_from((*PER_FIELD, "repeated")))
            def one_field(name: str, label: str) -> None:
                hostile = [(name, values["word"]), (name, values["huge"])] if label == "repeated" else [
                    (name, values[label])]
                pairs = [pair for pair in base if pair[0] != name] + hostile
                _judge(findings, "POST", (name,), label, _send(client, "POST", url, _encode(pairs), world))

            one_field()

    unique = {str(finding): finding for finding in findings}
    assert not unique, f"{route.route} ({route.name}):\n" + "\n".join(sorted(unique))


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in OBJECTS and "org_slug" in r.kwargs],
                         ids=lambda route: route.name)
def test_another_organizations_object_is_a_404(route: Route, world: World) -> None:
    """The object exists, in the other organization: its id under our organization's URL is a 404 for
    every method, and nothing of it is shown or changed."""
    client = Client()
    client.force_login(world.owner)
    url = _url(route, world, world.other_org).replace(f"/{world.other_org.slug}/", f"/{world.org.slug}/", 1)
    for method in ("GET", "POST"):
        outcome = _send(client, method, url, "", world)
        assert outcome.status in (404, 405), f"{method} {url}: {outcome.status} {outcome.error or ''}"


@pytest.mark.parametrize("route", [r for r in ROUTES if "org_slug" in r.kwargs], ids=lambda route: route.name)
def test_an_organization_the_user_is_not_in_is_a_404(route: Route, world: World) -> None:
    """Another organization's page (its own objects in its own URL) and an unknown slug: 404 either way, for
    every method, so the URL does not reveal which organizations exist."""
    client = Client()
    client.force_login(world.owner)
    theirs = _url(route, world, world.other_org)
    unknown = theirs.replace(f"/{world.other_org.slug}/", "/no-such-org/", 1)
    for url in (theirs, unknown):
        for method in ("GET", "POST"):
            outcome = _send(client, method, url, "", world)
            assert outcome.status in (404, 405), f"{method} {url}: {outcome.status} {outcome.error or ''}"
