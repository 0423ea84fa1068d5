"""The signed acknowledge / resolve links of escalation pages: GET only confirms, POST acts as the
link's user through the lifecycle; forged, altered, expired links and users who may not act get a 404
page; the link works without a session or CSRF token, and only through its signature."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import signing
from django.test import Client

from apps.alerts.choices import AlertState
from apps.alerts.models import AlertEvent
from apps.audit.models import AuditEvent
from apps.escalation import links
from tests.alerts.factories import AlertFactory

pytestmark = pytest.mark.django_db


def _url(alert: Any, user: Any, action: str) -> str:
    return "/api/v1/escalation/links/" + links.make_token(alert_public_id=str(alert.public_id), user_id=user.pk,
                                                          action=action)


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def test_get_only_confirms_and_post_acknowledges_as_the_links_user(client: Client, org: Any, editor: Any) -> None:
    alert = AlertFactory(organization=org)
    url = _url(alert, editor, "acknowledge")
    page = client.get(url)
    assert page.status_code == 200 and b"<form method=\"post\">" in page.content
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRING  # a link scanner fetching the GET changes nothing

    done = client.post(url)
    assert done.status_code == 200 and b"acknowledged" in done.content
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_by == editor
    assert AlertEvent.objects.filter(alert=alert, actor_repr="erin", to_state="acknowledged").exists()
    assert AuditEvent.objects.filter(action="alert.acknowledged", object_id=str(alert.public_id)).exists()
    assert client.post(url).status_code == 409  # once: the second click is told it already is


def test_a_resolve_link_resolves(client: Client, org: Any, editor: Any) -> None:
    alert = AlertFactory(organization=org)
    assert client.post(_url(alert, editor, "resolve")).status_code == 200
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_tampered_expired_and_unauthorised_links_are_404(client: Client, org: Any, other_org_user: Any,
                                                         member_ro: Any, editor: Any, settings: Any) -> None:
    alert = AlertFactory(organization=org)
    url = _url(alert, editor, "acknowledge")
    assert client.post(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 404
    forged = signing.dumps({"a": str(alert.public_id), "u": editor.pk, "x": "acknowledge"}, salt="other")
    assert client.post("/api/v1/escalation/links/" + forged).status_code == 404
    assert client.post(_url(alert, other_org_user, "acknowledge")).status_code == 404  # not a member
    assert client.post(_url(alert, member_ro, "acknowledge")).status_code == 404  # viewers may not acknowledge
    settings.FIBERSTACK_ESCALATION_LINK_MAX_AGE_SECONDS = -1
    assert client.post(url).status_code == 404  # expired
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRING


def test_make_url_is_absolute(org: Any, editor: Any, settings: Any) -> None:
    settings.FIBERSTACK_BASE_URL = "https://fs.example.com/"
    alert = AlertFactory(organization=org)
    url = links.make_url(alert=alert, user=editor, action="resolve")
    assert url.startswith("https://fs.example.com/api/v1/escalation/links/")
    claim = links.read_token(url.rsplit("/", 1)[1])
    assert claim == links.LinkClaim(alert_public_id=str(alert.public_id), user_id=editor.pk, action="resolve")


def test_group_links_act_on_every_open_alert_of_the_group(client: Client, org: Any, editor: Any) -> None:
    from apps.alerts.models import Alert
    from tests.escalation.factories_policies import EscalationPolicyFactory, escalating_group

    group = escalating_group(org, EscalationPolicyFactory(organization=org), alerts=3)
    lead = Alert.objects.filter(group=group).order_by("pk").first()
    url = _url(lead, editor, "acknowledge_group")
    page = client.get(url)
    assert page.status_code == 200 and b"every alert of this group" in page.content
    assert set(Alert.objects.filter(group=group).values_list("state", flat=True)) == {"firing"}
    done = client.post(url)
    assert done.status_code == 200 and b"Acknowledged 3 alert(s)" in done.content
    assert set(Alert.objects.filter(group=group).values_list("acknowledged_by", flat=True)) == {editor.pk}
    assert client.post(url).status_code == 409  # nothing left to acknowledge
    assert client.post(_url(lead, editor, "resolve_group")).status_code == 200
    assert set(Alert.objects.filter(group=group).values_list("state", flat=True)) == {"resolved"}
