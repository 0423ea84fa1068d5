"""suppression_for against real PostgreSQL: silences (active / pending / expired, matchers), maintenance
windows (scope by host, tag, service; whole organization; recurring), dependency inhibition through a
two-level chain, precedence, organization isolation and the number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.alerts.choices import AlertState
from apps.alerts.suppression import suppression_for
from apps.hosts.models import ServiceDependency
from tests.alerts.factories import AlertFactory, SilenceFactory
from tests.alerts.factories_suppression import MaintenanceWindowFactory
from tests.forked import finishes_in_a_child
from tests.hosts.factories import HostFactory, ServiceFactory

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def alert(org, host=None, **labels):
    labels = {"alertname": "cpu", "severity": "critical", **({"host": host.name} if host else {}), **labels}
    return AlertFactory(organization=org, host=host, labels=labels)


def silence(org, matchers, starts=AT - HOUR, ends=AT + HOUR, **kwargs):
    return SilenceFactory(organization=org, matchers=matchers, starts_at=starts, ends_at=ends, **kwargs)


# --- silences --------------------------------------------------------------------------------------


def test_active_matching_silence_suppresses(org):
    host = HostFactory(organization=org, name="db-12")
    s = silence(org, [{"name": "host", "op": "=~", "value": "db-.*"}], created_by_repr="erin", comment="upgrade")
    result = suppression_for(alert(org, host), at=AT)
    assert result is not None and result.kind == "silence"
    assert result.ref == str(s.public_id)
    assert "erin" in result.reason and "upgrade" in result.reason


@pytest.mark.parametrize(("starts", "ends"), [
    (AT + dt.timedelta(seconds=1), AT + HOUR),   # pending
    (AT - HOUR, AT),                              # expired exactly at AT (ends_at is exclusive)
    (AT - 2 * HOUR, AT - HOUR),                  # expired
])
def test_pending_and_expired_silences_do_not_suppress(org, starts, ends):
    silence(org, [{"name": "alertname", "op": "=", "value": "cpu"}], starts=starts, ends=ends)
    assert suppression_for(alert(org), at=AT) is None


def test_silence_starts_at_is_inclusive(org):
    silence(org, [{"name": "alertname", "op": "=", "value": "cpu"}], starts=AT)
    assert suppression_for(alert(org), at=AT).kind == "silence"


def test_silence_needs_every_matcher_and_anchors_regexes(org):
    host = HostFactory(organization=org, name="db-12")
    silence(org, [{"name": "alertname", "op": "=", "value": "cpu"}, {"name": "host", "op": "=~", "value": "db-1"}])
    silence(org, [{"name": "alertname", "op": "=", "value": "disk"}])
    assert suppression_for(alert(org, host), at=AT) is None
    silence(org, [{"name": "severity", "op": "!=", "value": "warning"}, {"name": "host", "op": "=~", "value": "db-1."}])
    assert suppression_for(alert(org, host), at=AT).kind == "silence"


def _expect_the_silence(alert_, silence_id):
    result = suppression_for(alert_, at=timezone.now())
    assert result is not None and result.kind == "silence" and result.ref == silence_id, result


def test_patterns_that_backtrack_exponentially_are_matched_at_once(org, api_client, editor):
    """Silences are matched in the alert engine's process: with Python's re, the first silence below took
    hours against the alert's labels, holding the GIL -- every organization's evaluation stopped."""
    client = api_client(user=editor)

    def post(matchers):
        response = client.post("/api/v1/silences", {"matchers": matchers, "duration": 3600}, format="json")
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    post([{"name": "path", "op": "=~", "value": "(a|a)*b"}])
    post('alertname="cpu",path=~"(a+)+$"')
    expected = post('alertname="cpu",path!~"(.*a){12}"')
    finishes_in_a_child(_expect_the_silence, alert(org, path="a" * 40 + "!"), expected)


def test_a_stored_pattern_re2_refuses_silences_nothing(org):
    """A silence stored before matchers were RE2 may hold a lookahead: it matches no alert (its ``!~``
    would otherwise silence nearly everything) and the check goes on to the other silences."""
    silence(org, [{"name": "alertname", "op": "=", "value": "cpu"}, {"name": "host", "op": "!~", "value": "(?=x)"}])
    assert suppression_for(alert(org), at=AT) is None
    later = silence(org, [{"name": "alertname", "op": "=", "value": "cpu"}], starts=AT - HOUR / 2)
    assert suppression_for(alert(org), at=AT).ref == str(later.public_id)


def test_another_organizations_silence_does_not_apply(org, other_org):
    silence(other_org, [{"name": "alertname", "op": "=", "value": "cpu"}])
    MaintenanceWindowFactory(organization=other_org, starts_at=AT - HOUR, duration_seconds=7200)
    assert suppression_for(alert(org), at=AT) is None


# --- maintenance -----------------------------------------------------------------------------------


def in_progress(org, **kwargs):
    return MaintenanceWindowFactory(organization=org, starts_at=AT - HOUR, duration_seconds=7200, **kwargs)


def test_unscoped_window_covers_the_whole_organization(org):
    w = in_progress(org, name="datacenter move")
    result = suppression_for(alert(org, HostFactory(organization=org)), at=AT)
    assert result.kind == "maintenance" and result.ref == str(w.public_id)
    assert "datacenter move" in result.reason
    assert suppression_for(alert(org), at=AT).kind == "maintenance"


def test_window_not_in_progress_does_not_apply(org):
    MaintenanceWindowFactory(organization=org, starts_at=AT + dt.timedelta(seconds=1), duration_seconds=60)
    MaintenanceWindowFactory(organization=org, starts_at=AT - HOUR, duration_seconds=3600)  # ended at AT
    assert suppression_for(alert(org), at=AT) is None


def test_window_scoped_to_hosts(org):
    db, web = HostFactory(organization=org), HostFactory(organization=org)
    in_progress(org, hosts=[db])
    assert suppression_for(alert(org, db), at=AT).kind == "maintenance"
    assert suppression_for(alert(org, web), at=AT) is None
    assert suppression_for(alert(org), at=AT) is None


def test_window_scoped_to_host_tags_needs_every_tag(org):
    both = HostFactory(organization=org, tags={"role": "db", "dc": "fra1", "extra": "x"})
    one = HostFactory(organization=org, tags={"role": "db", "dc": "ams1"})
    in_progress(org, host_tags={"role": "db", "dc": "fra1"})
    assert suppression_for(alert(org, both), at=AT).kind == "maintenance"
    assert suppression_for(alert(org, one), at=AT) is None
    assert suppression_for(alert(org, HostFactory(organization=org)), at=AT) is None


def test_window_scoped_to_services(org):
    db = HostFactory(organization=org)
    postgres = ServiceFactory(organization=org, host=db, name="postgres")
    in_progress(org, services=[postgres])
    assert suppression_for(alert(org, db), at=AT).kind == "maintenance"            # its host runs it
    assert suppression_for(alert(org, service="postgres"), at=AT).kind == "maintenance"  # hostless, names it
    assert suppression_for(alert(org, HostFactory(organization=org)), at=AT) is None
    assert suppression_for(alert(org, service="redis"), at=AT) is None


def test_scopes_are_a_union(org):
    a, b = HostFactory(organization=org), HostFactory(organization=org, tags={"team": "pay"})
    in_progress(org, hosts=[a], host_tags={"team": "pay"})
    assert suppression_for(alert(org, a), at=AT).kind == "maintenance"
    assert suppression_for(alert(org, b), at=AT).kind == "maintenance"
    assert suppression_for(alert(org, HostFactory(organization=org)), at=AT) is None


def test_recurring_window_applies_only_during_its_occurrences(org):
    # Wednesdays 13:30-14:30 Berlin (summer time): 11:30-12:30 UTC; AT is Wednesday 1 July 2026, 12:00 UTC.
    MaintenanceWindowFactory(organization=org, starts_at=dt.datetime(2026, 1, 7, 12, 30, tzinfo=dt.UTC),
                             duration_seconds=3600, rrule="FREQ=WEEKLY;BYDAY=WE", time_zone="Europe/Berlin")
    a = alert(org)
    assert suppression_for(a, at=AT).kind == "maintenance"
    assert suppression_for(a, at=AT + HOUR) is None
    assert suppression_for(a, at=AT + dt.timedelta(days=1)) is None
    assert suppression_for(a, at=AT + dt.timedelta(days=7)).kind == "maintenance"


def test_weekly_berlin_window_suppresses_at_0230_local_on_both_sides_of_the_dst_changes(org):
    """Sundays 02:30-03:30 Berlin: 01:30 UTC in winter, 00:30 UTC in summer; 29 March 2026 02:30 does not
    exist and is read as 03:30 summer time (01:30 UTC); 25 October 02:30 is its first (summer) instant."""
    MaintenanceWindowFactory(organization=org, starts_at=dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.UTC),
                             duration_seconds=3600, rrule="FREQ=WEEKLY;BYDAY=SU", time_zone="Europe/Berlin")
    a = alert(org)
    for day, hour in ((22, 1), (29, 1)):
        assert suppression_for(a, at=dt.datetime(2026, 3, day, hour, 45, tzinfo=dt.UTC)).kind == "maintenance"
    assert suppression_for(a, at=dt.datetime(2026, 4, 5, 0, 45, tzinfo=dt.UTC)).kind == "maintenance"
    assert suppression_for(a, at=dt.datetime(2026, 4, 5, 1, 45, tzinfo=dt.UTC)) is None
    assert suppression_for(a, at=dt.datetime(2026, 10, 25, 0, 45, tzinfo=dt.UTC)).kind == "maintenance"
    assert suppression_for(a, at=dt.datetime(2026, 10, 25, 1, 45, tzinfo=dt.UTC)) is None
    assert suppression_for(a, at=dt.datetime(2026, 11, 1, 1, 45, tzinfo=dt.UTC)).kind == "maintenance"


def test_recurring_window_past_its_until_does_not_apply(org):
    MaintenanceWindowFactory(organization=org, starts_at=dt.datetime(2026, 1, 7, 11, 30, tzinfo=dt.UTC),
                             duration_seconds=3600, rrule="FREQ=DAILY", until=AT - dt.timedelta(days=1))
    assert suppression_for(alert(org), at=AT) is None


# --- inhibition ------------------------------------------------------------------------------------


@pytest.fixture
def chain(org):
    """db-1 (host) <- api (a service on app-1) <- web-1 (host): web-1 depends on api, api on db-1."""
    db, app, web = (HostFactory(organization=org, name=n) for n in ("db-1", "app-1", "web-1"))
    api = ServiceFactory(organization=org, host=app, name="api")
    ServiceDependency.objects.create(organization=org, upstream_host=db, downstream_service=api)
    ServiceDependency.objects.create(organization=org, upstream_service=api, downstream_host=web)
    return {"db": db, "app": app, "web": web, "api": api}


def test_firing_upstream_inhibits_two_levels_down(org, chain):
    cause = AlertFactory(organization=org, host=chain["db"], labels={"alertname": "HostDown", "host": "db-1"})
    result = suppression_for(alert(org, chain["web"]), at=AT)
    assert result is not None and result.kind == "inhibition"
    assert result.reason == "inhibited by HostDown on db-1"
    assert result.ref == str(cause.public_id)
    # One level down: the api service's alerts (labelled service=api on its host).
    assert suppression_for(alert(org, chain["app"], service="api"), at=AT).kind == "inhibition"


def test_firing_upstream_service_inhibits_its_dependents(org, chain):
    cause = AlertFactory(organization=org, host=chain["app"],
                         labels={"alertname": "Latency", "host": "app-1", "service": "api"})
    result = suppression_for(alert(org, chain["web"]), at=AT)
    assert result.kind == "inhibition" and result.ref == str(cause.public_id)
    assert result.reason == "inhibited by Latency on service api"
    # A plain host alert on app-1 is not an alert on the api service: nothing upstream of web-1 fires.
    cause.delete()
    AlertFactory(organization=org, host=chain["app"], labels={"alertname": "cpu", "host": "app-1"})
    assert suppression_for(alert(org, chain["web"]), at=AT) is None


@pytest.mark.parametrize(("state", "inhibits"), [
    (AlertState.FIRING, True),
    (AlertState.ACKNOWLEDGED, True),   # someone works on the cause; the dependents are still noise
    (AlertState.PENDING, False),
    (AlertState.RESOLVED, False),
])
def test_which_upstream_states_inhibit(org, chain, state, inhibits):
    AlertFactory(organization=org, host=chain["db"], state=state, labels={"alertname": "HostDown", "host": "db-1"})
    result = suppression_for(alert(org, chain["web"]), at=AT)
    assert (result is not None and result.kind == "inhibition") is inhibits


def test_inhibition_points_upstream_only(org, chain):
    AlertFactory(organization=org, host=chain["web"], labels={"alertname": "cpu", "host": "web-1"})
    upstream = alert(org, chain["db"], alertname="disk")
    assert suppression_for(upstream, at=AT) is None
    upstream.delete()
    # and an alert never inhibits itself or its own host's alerts
    assert suppression_for(alert(org, chain["web"], alertname="mem"), at=AT) is None


def test_no_dependencies_no_inhibition(org):
    host = HostFactory(organization=org)
    AlertFactory(organization=org, host=HostFactory(organization=org), labels={"alertname": "HostDown"})
    assert suppression_for(alert(org, host), at=AT) is None


# --- precedence and cost ---------------------------------------------------------------------------


def test_silence_comes_before_maintenance_before_inhibition(org, chain):
    AlertFactory(organization=org, host=chain["db"], labels={"alertname": "HostDown", "host": "db-1"})
    target = alert(org, chain["web"])
    assert suppression_for(target, at=AT).kind == "inhibition"
    in_progress(org, hosts=[chain["web"]])
    assert suppression_for(target, at=AT).kind == "maintenance"
    silence(org, [{"name": "host", "op": "=", "value": "web-1"}])
    assert suppression_for(target, at=AT).kind == "silence"


def test_a_check_costs_a_few_queries(org, chain, django_assert_max_num_queries):
    for n in range(20):
        silence(org, [{"name": "alertname", "op": "=", "value": f"other-{n}"}])
        MaintenanceWindowFactory(organization=org, starts_at=AT - HOUR, duration_seconds=7200,
                                 hosts=[HostFactory(organization=org)])
    AlertFactory(organization=org, host=chain["db"], labels={"alertname": "HostDown", "host": "db-1"})
    target = alert(org, chain["app"], service="api")
    with django_assert_max_num_queries(7):
        assert suppression_for(target, at=AT).kind == "inhibition"
