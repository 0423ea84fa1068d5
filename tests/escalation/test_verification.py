"""Contact-method verification: a new (or moved) method is sent a signed link through the outbox; the link
confirms on GET and verifies on POST; unverified methods are never paged (the timeline says so); admins
may vouch directly; ``POST /api/v1/contact-methods/{id}/send-verification``. Also: the method's channel
is escalation-managed, so the channels API does not show it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from apps.alerts.delivery.dispatch import deliver
from apps.alerts.models import AlertEvent, Notification
from apps.alerts.services.lifecycle import record_outcomes
from apps.audit.models import AuditEvent
from apps.escalation import engine, verification
from apps.escalation import policy_services as services
from apps.escalation.models import ContactMethod, OnCallAssignment
from apps.escalation.policy_services import StepData
from tests.alerts.factories_lifecycle import breach
from tests.escalation.factories_policies import StepRecorder, contact, policy_with_steps, routed_rule
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


def _new(org: Any, user: Any, kind: str = "email", **fields: Any) -> ContactMethod:
    return contact(org, user, kind=kind, verified=False, **fields)


def _notices(method: ContactMethod) -> Any:
    return Notification.objects.filter(channel=method.channel, kind="notice").order_by("pk")


def _link(notification: Notification) -> str:
    return notification.payload["alerts"][0]["annotations"]["verify_url"]


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_contact_methods_channel_is_escalation_managed_and_hidden(org: Any, owner: Any, api_client: Any) -> None:
    method = _new(org, owner)
    assert method.channel is not None and method.channel.managed_by == "escalation"
    assert api_client(user=owner).get(f"/api/v1/channels/{method.channel.public_id}").status_code == 404
    body = api_client(user=owner).get("/api/v1/channels").json()
    rows = body["results"] if isinstance(body, dict) else body
    assert str(method.channel.public_id) not in {row["id"] for row in rows}


def test_a_notify_channel_step_cannot_use_a_contact_channel(org: Any, owner: Any) -> None:
    method = _new(org, owner)
    with pytest.raises(services.ValidationError) as caught:
        policy_with_steps(org, [StepData("notify_channel", channels=[method.channel])])
    assert "steps" in caught.value.message_dict


def test_creating_a_method_emails_a_signed_link_that_verifies_on_post(org: Any, owner: Any) -> None:
    method = _new(org, owner, address="alice@example.com")
    assert not method.verified and method.verification_sent_at is not None
    [notice] = _notices(method)
    assert AuditEvent.objects.filter(action="escalation.contact_verification_sent").count() == 1

    deliver(notice.pk)
    [message] = mail.outbox
    assert message.to == ["alice@example.com"] and "Verify" in message.subject
    assert _link(notice) in message.body

    client = Client()
    page = client.get(_path(_link(notice)))
    assert page.status_code == 200 and b"<button" in page.content
    method.refresh_from_db()
    assert not method.verified  # a GET (a mail scanner) never verifies
    assert client.post(_path(_link(notice))).status_code == 200
    method.refresh_from_db()
    assert method.verified and method.verified_at is not None
    client.post(_path(_link(notice)))  # a second click verifies (and audits) once
    events = AuditEvent.objects.filter(action="escalation.contact_verified")
    assert events.count() == 1


def test_a_webhook_method_gets_a_test_message_with_the_link(org: Any, owner: Any) -> None:
    method = _new(org, owner, kind="webhook")
    [notice] = _notices(method)
    assert notice.payload["status"] == "notice" and "/contact-verification/" in _link(notice)


def test_changing_the_address_unverifies_voids_old_links_and_sends_a_new_one(org: Any, owner: Any) -> None:
    method = _new(org, owner, address="old@example.com")
    old_link = _link(_notices(method).get())
    verification.verify_contact_method(method=method, actor=owner, via="link")
    services.update_contact_method(method=method, actor=owner, address="new@example.com")
    method.refresh_from_db()
    assert not method.verified
    assert _notices(method).count() == 2
    assert Client().post(_path(old_link)).status_code == 404
    method.refresh_from_db()
    assert not method.verified
    assert Client().post(_path(_link(_notices(method).last()))).status_code == 200
    method.refresh_from_db()
    assert method.verified
    services.update_contact_method(method=method, actor=owner, delay_seconds=60)  # same address: stays verified
    method.refresh_from_db()
    assert method.verified and _notices(method).count() == 2


def test_forged_or_expired_links_are_404(org: Any, owner: Any) -> None:
    method = _new(org, owner)
    link = _path(_link(_notices(method).get()))
    assert Client().post(link[:-3] + "abc").status_code == 404
    with override_settings(FIBERSTACK_ESCALATION_LINK_MAX_AGE_SECONDS=-1):
        assert Client().post(link).status_code == 404
    method.refresh_from_db()
    assert not method.verified


# --- the engine never pages an unverified method ------------------------------------------------------


def test_unverified_methods_are_not_paged_and_the_timeline_says_why(
        org: Any, owner: Any, editor: Any, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: Callable) -> None:
    steps = StepRecorder()
    monkeypatch.setattr(engine, "_enqueue", steps)
    unverified = _new(org, owner, kind="webhook")
    verified = contact(org, editor)
    policy = policy_with_steps(org, [StepData("notify_user", users=[owner, editor])])
    rule = routed_rule(org, policy)
    with django_capture_on_commit_callbacks(execute=True):
        alert = record_outcomes(rule=rule, outcomes=[breach(host="web-1")], at=timezone.now(), complete=True)[0]
    alert_id, escalation_id, step_index, repeat = steps.last()
    with django_capture_on_commit_callbacks(execute=True):
        engine.run_step(alert_id=alert_id, escalation_id=escalation_id, step_index=step_index, repeat=repeat)
    pages = Notification.objects.filter(alert=alert, kind="escalation")
    assert list(pages.values_list("channel_id", flat=True)) == [verified.channel_id]
    assert not pages.filter(channel=unverified.channel).exists()
    assert OnCallAssignment.objects.get(alert=alert, user=owner).notification_ids == []
    timeline = " ".join(AlertEvent.objects.filter(alert=alert).values_list("message", flat=True))
    assert "skipped unverified contact methods: alice webhook" in timeline


# --- API -----------------------------------------------------------------------------------------------


def _send(client: Any, method: ContactMethod) -> Any:
    return client.post(f"/api/v1/contact-methods/{method.public_id}/send-verification")


def test_a_member_resends_their_own_verification(org: Any, member_ro: Any, api_client: Any) -> None:
    method = _new(org, member_ro)
    response = _send(api_client(user=member_ro), method)
    assert response.status_code == 200 and response.json()["verified"] is False
    assert response.json()["verification_sent_at"] is not None and response.json()["verified_at"] is None
    assert _notices(method).count() == 2
    assert AuditEvent.objects.filter(action="escalation.contact_verification_sent").count() == 2


def test_send_verification_refuses_a_verified_or_disabled_method(org: Any, owner: Any, api_client: Any) -> None:
    client = api_client(user=owner)
    response = _send(client, contact(org, owner))
    assert response.status_code == 400 and "verified" in response.json()
    response = _send(client, _new(org, owner, kind="webhook", enabled=False))
    assert response.status_code == 400 and "enabled" in response.json()


@pytest.mark.parametrize(("who", "status"), [("colleague", 403), ("admin", 200)])
def test_send_verification_for_a_colleague_needs_admin(org: Any, member_ro: Any, admin_member: Any, editor: Any,
                                                       api_client: Any, who: str, status: int) -> None:
    method = _new(org, member_ro)
    user = editor if who == "colleague" else admin_member
    assert _send(api_client(user=user), method).status_code == status


@pytest.mark.parametrize(("scope", "status"), [("read", 403), ("config", 200)])
def test_send_verification_needs_a_config_token(org: Any, owner: Any, make_token: Any, api_client: Any,
                                                scope: str, status: int) -> None:
    method = _new(org, owner)
    _, token = make_token(scope=scope)
    assert _send(api_client(token=token), method).status_code == status


def test_send_verification_of_another_organizations_method_is_404(org: Any, other_org: Any, other_org_user: Any,
                                                                  owner: Any, api_client: Any) -> None:
    method = _new(other_org, other_org_user)
    assert _send(api_client(user=owner), method).status_code == 404
    assert _notices(method).count() == 1


def test_a_member_cannot_mark_their_own_method_verified(org: Any, member_ro: Any, api_client: Any) -> None:
    method = _new(org, member_ro)
    response = api_client(user=member_ro).patch(f"/api/v1/contact-methods/{method.public_id}",
                                                {"verified": True}, format="json")
    assert response.status_code == 200
    method.refresh_from_db()
    assert not method.verified


# --- admin ---------------------------------------------------------------------------------------------


def test_an_admin_marks_methods_verified_audited(org: Any, owner: Any) -> None:
    method = _new(org, owner)
    client = Client()
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    client.post(reverse("admin:escalation_contactmethod_changelist"),
                {"action": "mark_verified", "_selected_action": [method.pk]})
    method.refresh_from_db()
    assert method.verified and method.verified_at is not None
    event = AuditEvent.objects.get(action="escalation.contact_verified")
    assert event.actor_user_id == root.pk and event.changes["via"] == [None, "admin"]


def test_verification_links_expire_with_the_link_setting(org: Any, owner: Any, monkeypatch: Any) -> None:
    method = _new(org, owner)
    token = verification.make_token(method)
    assert verification.read_token(token) is not None
    later = dt.datetime.now(dt.UTC).timestamp() + 2 * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    assert verification.read_token(token) is None
