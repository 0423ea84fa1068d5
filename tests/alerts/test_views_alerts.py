"""The alert list and alert page: every role sees them, only editors and up see and may use the
acknowledge / resolve / silence buttons (through the real lifecycle services), other organizations'
alerts are 404, the live fragment, the ledger on the alert page, and both pages with Redis down."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.alerts.models import Alert, AlertEvent, Silence
from apps.alerts.suppression import matchers_match
from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.metrics.models import Series
from fiberstack.settings.base import CACHES
from tests.alerts.factories import AlertFactory, AlertRuleFactory
from tests.alerts.factories_pages import AlertEventFactory, DeliveryAttemptFactory, NotificationFactory
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
ACTIONS = ("acknowledge", "resolve", "silence")


def label(name: str, value: str) -> str:
    """A label as the pages print it (HTML-escaped)."""
    return escape(f'{name}="{value}"')


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER])
def test_every_member_sees_the_alert_pages_and_only_editors_see_the_buttons(user_with_role, org, role):
    alert = AlertFactory(organization=org, labels={"alertname": "cpu high", "host": "web-1", "severity": "critical"},
                         summary="CPU at 95 %")
    client = _client(user_with_role(role))
    listing = client.get(reverse("alerts:list", args=[org.slug]))
    detail = client.get(reverse("alerts:detail", args=[org.slug, alert.public_id]))
    assert listing.status_code == 200 and detail.status_code == 200
    for page in (listing.content.decode(), detail.content.decode()):
        assert "cpu high" in page and label("host", "web-1") in page
        for action in ACTIONS:
            shown = f'data-action="{action}"' in page
            assert shown is (role != Role.VIEWER), (action, role)
    assert f'data-ws-path="/ws/{org.slug}/alerts/"' in listing.content.decode()
    # The list's buttons share one form (CSRF token, next, silence duration), each naming its action.
    ack = f'form="alert-actions" formaction="/{org.slug}/alerts/{alert.public_id}/acknowledge"'
    assert (ack in listing.content.decode()) is (role != Role.VIEWER)
    assert ('<form id="alert-actions" method="post"' in listing.content.decode()) is (role != Role.VIEWER)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_viewer_cannot_post_the_alert_actions(member_ro, org, action):
    alert = AlertFactory(organization=org)
    response = _client(member_ro).post(reverse(f"alerts:{action}", args=[org.slug, alert.public_id]),
                                       {"duration": "3600"})
    assert response.status_code == 403
    _assert_untouched(alert)


def _assert_untouched(alert: Alert) -> None:
    alert.refresh_from_db()
    assert alert.state == "firing"
    assert not AlertEvent.objects.filter(alert=alert).exists() and not Silence.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="alert.").exists()


@pytest.mark.parametrize(("action", "state"), [("acknowledge", "acknowledged"), ("resolve", "resolved")])
def test_an_editor_acknowledges_and_resolves_through_the_lifecycle(editor, org, action, state):
    alert = AlertFactory(organization=org)
    back = reverse("alerts:list", args=[org.slug]) + "?state=firing&severity=critical"
    response = _client(editor).post(reverse(f"alerts:{action}", args=[org.slug, alert.public_id]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    alert.refresh_from_db()
    assert alert.state == state
    event = AlertEvent.objects.get(alert=alert)
    assert (event.from_state, event.to_state, event.actor_type) == ("firing", state, "user")
    audit = AuditEvent.objects.get(organization=org, action=f"alert.{state}")
    assert audit.actor_user_id == editor.pk
    if action == "acknowledge":
        assert alert.acknowledged_by == editor


def test_the_action_redirect_never_leaves_the_site(editor, org):
    alert = AlertFactory(organization=org)
    response = _client(editor).post(reverse("alerts:acknowledge", args=[org.slug, alert.public_id]),
                                    {"next": "https://evil.example/"})
    assert response["Location"] == reverse("alerts:detail", args=[org.slug, alert.public_id])


@pytest.mark.parametrize(("action", "state", "message"), [
    ("acknowledge", "resolved", "Could not acknowledge: The alert is resolved; only a firing alert can be"),
    ("acknowledge", "acknowledged", "Could not acknowledge: The alert is acknowledged;"),
    ("resolve", "resolved", "Could not resolve: The alert is resolved; only an open alert can be resolved."),
])
def test_a_refused_transition_is_shown_not_a_500(editor, org, action, state, message):
    """Two people pressing the same button: the second is told what happened, nothing changes twice."""
    alert = AlertFactory(organization=org, state=state)
    response = _client(editor).post(reverse(f"alerts:{action}", args=[org.slug, alert.public_id]), follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AlertEvent.objects.filter(alert=alert).exists()


def test_acknowledge_is_offered_only_for_firing_alerts(editor, org):
    pending = AlertFactory(organization=org, state="pending", started_at=None, pending_since=timezone.now())
    content = _client(editor).get(reverse("alerts:detail", args=[org.slug, pending.public_id])).content.decode()
    assert 'data-action="acknowledge"' not in content and 'data-action="resolve"' in content


def test_an_editor_silences_an_alert_by_its_labels_for_the_chosen_duration(editor, org):
    alert = AlertFactory(organization=org, labels={"alertname": "disk", "host": "db-1", "mount": "/",
                                                   "severity": "warning"})
    before = timezone.now()
    response = _client(editor).post(reverse("alerts:silence", args=[org.slug, alert.public_id]),
                                    {"duration": "7200", "comment": "disk swap"})
    assert response.status_code == 302
    silence = Silence.objects.get(organization=org)
    assert silence.matchers == [{"name": "alertname", "op": "=", "value": "disk"},
                                {"name": "host", "op": "=", "value": "db-1"},
                                {"name": "mount", "op": "=", "value": "/"}]
    assert matchers_match(silence.matchers, {**alert.labels, "severity": "critical"})  # survives a severity change
    assert not matchers_match(silence.matchers, {**alert.labels, "host": "db-2"})
    assert dt.timedelta(hours=2) <= silence.ends_at - before < dt.timedelta(hours=2, minutes=1)
    assert silence.created_by == editor and silence.comment == "disk swap"
    assert AuditEvent.objects.filter(organization=org, action="silence.created").count() == 1


def test_a_silence_with_a_duration_not_offered_is_refused(editor, org):
    alert = AlertFactory(organization=org)
    response = _client(editor).post(reverse("alerts:silence", args=[org.slug, alert.public_id]),
                                    {"duration": "31536000"}, follow=True)
    assert "Could not silence" in response.content.decode()
    assert not Silence.objects.exists()


def test_other_organizations_alerts_are_404(other_org_user, owner, org, other_org):
    ours = AlertFactory(organization=org)
    theirs = AlertFactory(organization=other_org)
    outsider = _client(other_org_user)
    assert outsider.get(reverse("alerts:list", args=[org.slug])).status_code == 404
    assert outsider.get(reverse("alerts:detail", args=[org.slug, ours.public_id])).status_code == 404
    # Through their own organization's URL our alert is not found either, nor can it be acted on.
    assert outsider.get(reverse("alerts:detail", args=[other_org.slug, ours.public_id])).status_code == 404
    for action in ACTIONS:
        url = reverse(f"alerts:{action}", args=[other_org.slug, ours.public_id])
        assert outsider.post(url, {"duration": "3600"}).status_code == 404
    _assert_untouched(ours)
    # And our owner cannot reach theirs through our URL.
    assert _client(owner).get(reverse("alerts:detail", args=[org.slug, theirs.public_id])).status_code == 404
    assert theirs.labels["host"] not in _client(owner).get(reverse("alerts:list", args=[org.slug])).content.decode()


def test_anonymous_is_sent_to_login(client, org):
    response = client.get(reverse("alerts:list", args=[org.slug]))
    assert response.status_code == 302 and "/accounts/" in response["Location"]


def test_the_list_tabs_and_filters(owner, org):
    web = HostFactory(organization=org, name="web-1")
    cpu = AlertRuleFactory(organization=org, name="cpu high")
    disk = AlertRuleFactory(organization=org, name="disk full")
    AlertFactory(organization=org, rule=cpu, host=web, severity="critical",
                 labels={"alertname": "cpu high", "host": "web-1", "severity": "critical"})
    AlertFactory(organization=org, rule=cpu, severity="warning",
                 labels={"alertname": "cpu high", "host": "db-7", "severity": "warning"})
    AlertFactory(organization=org, rule=disk, state="acknowledged",
                 labels={"alertname": "disk full", "host": "db-8", "mount": "/var"})
    AlertFactory(organization=org, rule=disk, state="resolved", resolved_at=timezone.now(),
                 labels={"alertname": "disk full", "host": "old-1"})
    client = _client(owner)
    url = reverse("alerts:list", args=[org.slug])

    def hosts(**params: str) -> set[str]:
        content = client.get(url, params).content.decode()
        return {name for name in ("web-1", "db-7", "db-8", "old-1") if label("host", name) in content}

    assert hosts() == {"web-1", "db-7"}  # firing is the default tab
    assert hosts(state="acknowledged") == {"db-8"}
    assert hosts(state="resolved") == {"old-1"}
    assert hosts(state="open") == {"web-1", "db-7", "db-8"}
    assert hosts(severity="warning") == {"db-7"}
    assert hosts(state="open", rule=str(disk.public_id)) == {"db-8"}
    # A rule that is no UUID used to list nothing, as if the rule had no alerts: now a 400 naming ``rule``
    # (tests/core/test_page_params.py), so a mistyped link cannot pass for "no alerts".
    assert client.get(url, {"state": "open", "rule": "not-a-uuid"}).status_code == 400
    assert hosts(host="web") == {"web-1"}
    assert hosts(state="open", q="/var") == {"db-8"}


def test_a_row_shows_value_threshold_relative_start_and_suppression(owner, org):
    AlertFactory(organization=org, value=97.5, threshold=90.0, started_at=timezone.now() - dt.timedelta(minutes=3),
                 suppressed_reason="silenced by erin until 12:00", inhibited_by="host db-1 down")
    content = _client(owner).get(reverse("alerts:list", args=[org.slug])).content.decode()
    assert "97.5" in content and "&gt; 90" in content
    assert ">3 min ago</time>" in content and 'title="20' in content  # absolute time in the title
    assert "silenced by erin until 12:00" in content and "host db-1 down" in content
    assert 'class="badge suppressed"' in content and 'class="badge inhibited"' in content


def test_the_fragment_is_the_table_alone_with_the_same_filters(owner, org):
    AlertFactory(organization=org, severity="warning", labels={"alertname": "a", "host": "w-1"})
    AlertFactory(organization=org, severity="critical", labels={"alertname": "a", "host": "c-1"})
    response = _client(owner).get(reverse("alerts:list", args=[org.slug]), {"severity": "warning", "fragment": "1"})
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="alert-table">') and "<html" not in content
    assert label("host", "w-1") in content and label("host", "c-1") not in content


def test_the_fragment_url_keeps_the_filters(owner, org):
    content = _client(owner).get(reverse("alerts:list", args=[org.slug]), {"state": "open", "host": "db"}).content
    assert b'data-fragment-url="/acme/alerts/?state=open&amp;host=db&amp;fragment=1"' in content


def test_the_alert_page_shows_rule_timeline_ledger_and_baseline(owner, org):
    rule = AlertRuleFactory(organization=org, name="latency anomaly", kind="anomaly", metric="http_latency")
    alert = AlertFactory(organization=org, rule=rule, baseline={"method": "mean_stddev", "center": 120.5,
                                                                "lower": 80.0, "upper": 161.0, "samples": 2016})
    AlertEventFactory(alert=alert, from_state="pending", to_state="firing", message="value 200 above 161")
    AlertEventFactory(alert=alert, from_state="firing", to_state="acknowledged", actor_type="user", actor_repr="erin")
    notification = NotificationFactory(alert=alert, status="pending", attempts=2, last_error="HTTP 502 from receiver",
                                       channel__name="ops-webhook")
    DeliveryAttemptFactory(notification=notification, number=1, error="connection refused")
    DeliveryAttemptFactory(notification=notification, number=2, response_status=502, error="HTTP 502 from receiver")
    content = _client(owner).get(reverse("alerts:detail", args=[org.slug, alert.public_id])).content.decode()
    assert reverse("alerts:rule-detail", args=[org.slug, rule.public_id]) in content
    assert "value 200 above 161" in content and "erin" in content
    assert "ops-webhook" in content and "HTTP 502 from receiver" in content and "connection refused" in content
    assert "attempt 1" in content and "attempt 2" in content
    assert "Anomaly baseline" in content and "161.0" in content and "2016" in content
    assert "data-alert-chart" in content and "name=http_latency" in content
    assert '"label": "baseline upper"' in content


def test_the_alert_page_charts_the_exact_series_when_known(owner, org):
    series = Series.objects.create(organization=org, name="cpu_usage", labels={"core": "0", "host": "web-1"},
                                   key_hash=b"k" * 32)
    alert = AlertFactory(organization=org, series_id=series.pk)
    content = _client(owner).get(reverse("alerts:detail", args=[org.slug, alert.public_id])).content.decode()
    assert "name=cpu_usage&amp;labels=core%3D%220%22%2Chost%3D%22web-1%22" in content


@override_settings(CACHES=UNREACHABLE_REDIS)
def test_the_alert_pages_render_with_redis_down(owner, org):
    alert = AlertFactory(organization=org, labels={"alertname": "cpu", "host": "web-9"})
    NotificationFactory(alert=alert)
    client = _client(owner)
    listing = client.get(reverse("alerts:list", args=[org.slug]))
    assert listing.status_code == 200 and label("host", "web-9") in listing.content.decode()
    assert client.get(reverse("alerts:list", args=[org.slug]), {"fragment": "1"}).status_code == 200
    assert client.get(reverse("alerts:detail", args=[org.slug, alert.public_id])).status_code == 200


def test_an_unverified_session_of_an_enrolled_user_must_give_the_second_factor_first(editor, org):
    TOTPDevice.objects.create(user=editor, name="Authenticator app", confirmed=True)
    alert = AlertFactory(organization=org)
    client = _client(editor)  # password only: not OTP-verified
    for response in (client.get(reverse("alerts:list", args=[org.slug])),
                     client.post(reverse("alerts:acknowledge", args=[org.slug, alert.public_id]))):
        assert response.status_code == 302 and reverse("accounts:login_verify") in response["Location"]
    _assert_untouched(alert)


def test_the_list_costs_the_same_queries_for_many_alerts(owner, org, django_assert_max_num_queries):
    rule = AlertRuleFactory(organization=org)
    AlertFactory.create_batch(3, organization=org, rule=rule)
    client = _client(owner)
    url = reverse("alerts:list", args=[org.slug])
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(40):
        AlertFactory(organization=org, rule=AlertRuleFactory(organization=org), host=HostFactory(organization=org),
                     state="acknowledged" if n % 2 else "firing", acknowledged_by=owner)
    with django_assert_max_num_queries(len(few)):
        assert client.get(url, {"state": "open"}).status_code == 200


def test_the_alert_page_links_a_prefilled_silence_form(editor, member_ro, org):
    alert = AlertFactory(organization=org, labels={"alertname": "cpu", "host": 'we"b', "severity": "critical"})
    page = _client(editor).get(reverse("alerts:detail", args=[org.slug, alert.public_id])).content.decode()
    link = reverse("alerts:silence-create", args=[org.slug]) + "?matchers="
    assert link in page and 'data-action="silence-custom"' in page
    query = page.split(link)[1].split('"')[0].replace("&amp;", "&")
    form = _client(editor).get(link + query).content.decode()
    assert escape('alertname="cpu",host="we\\"b"') in form
    assert 'data-action="silence-custom"' not in _client(member_ro).get(
        reverse("alerts:detail", args=[org.slug, alert.public_id])).content.decode()
    _client(editor).post(reverse("alerts:silence-create", args=[org.slug]),
                         {"matchers": 'alertname="cpu",host="we\\"b"', "duration": "3600"})
    assert Silence.objects.get().matchers == [{"name": "alertname", "op": "=", "value": "cpu"},
                                              {"name": "host", "op": "=", "value": 'we"b'}]


def test_acknowledging_with_redis_down_still_works(editor, org, settings, django_capture_on_commit_callbacks):
    # Both through the settings fixture: mixed with an @override_settings decorator, the fixture's teardown
    # would restore the decorator's settings (CACHES pointing nowhere) for every later test of the process.
    settings.CACHES = UNREACHABLE_REDIS
    settings.CHANNEL_LAYERS = {"default": {**settings.CHANNEL_LAYERS["default"],
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    alert = AlertFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(editor).post(reverse("alerts:acknowledge", args=[org.slug, alert.public_id]))
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.state == "acknowledged"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_a_next_without_a_slash_is_followed_as_a_relative_url(editor, org, action):
    """``next=abc`` was a 500: redirect() took a target with neither "/" nor "." for a view name."""
    alert = AlertFactory(organization=org)
    response = _client(editor).post(reverse(f"alerts:{action}", args=[org.slug, alert.public_id]), {"next": "abc"})
    assert response.status_code == 302
    assert response["Location"] == "abc"
