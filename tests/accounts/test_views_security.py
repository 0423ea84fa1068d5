"""The security page's session list and revocation."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

SECURITY = reverse("accounts:security")


def test_sessions_are_recorded_with_address_and_user_agent(member_ro, signed_in):
    client = signed_in(member_ro, user_agent="Firefox on the laptop", ip="192.0.2.7")
    record = UserSession.objects.get(user=member_ro)
    assert record.session_id == client.session.session_key
    assert record.ip == "192.0.2.7"
    assert record.user_agent == "Firefox on the laptop"


def test_last_seen_is_updated_at_most_once_a_minute(member_ro, signed_in):
    client = signed_in(member_ro)
    record = UserSession.objects.get(user=member_ro)
    old = timezone.now() - datetime.timedelta(minutes=5)
    UserSession.objects.filter(pk=record.pk).update(last_seen_at=old)
    client.get(SECURITY)
    assert UserSession.objects.get(pk=record.pk).last_seen_at == old  # inside the minute: no write
    cache.delete_pattern("*")  # the minute has passed
    client.get(SECURITY)
    assert UserSession.objects.get(pk=record.pk).last_seen_at > old


def test_security_page_lists_only_the_users_own_sessions(member_ro, other_org_user, signed_in):
    mine = signed_in(member_ro, user_agent="Bob's Firefox")
    signed_in(member_ro, user_agent="Bob's phone")
    signed_in(other_org_user, user_agent="Charlie's Chrome")
    page = mine.get(SECURITY)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Bob&#x27;s Firefox" in body and "Bob&#x27;s phone" in body
    assert "Charlie" not in body
    listed = {s.public_id for s in page.context["sessions"]}
    assert listed == set(UserSession.objects.filter(user=member_ro).values_list("public_id", flat=True))
    # The session key is the cookie secret: the page names sessions by public id only.
    assert not any(key in body for key in UserSession.objects.values_list("session_id", flat=True))


def test_revoking_another_users_session_gives_404(member_ro, other_org_user, signed_in):
    mine = signed_in(member_ro)
    signed_in(other_org_user)
    theirs = UserSession.objects.get(user=other_org_user)
    response = mine.post(reverse("accounts:session_revoke", args=[theirs.public_id]))
    assert response.status_code == 404
    assert Session.objects.filter(session_key=theirs.session_id).exists()
    assert not AuditEvent.objects.filter(action="user.session_revoked").exists()


def test_revoking_one_other_session_signs_it_out_and_is_audited(member_ro, signed_in):
    laptop = signed_in(member_ro, user_agent="laptop")
    phone = signed_in(member_ro, user_agent="phone")
    target = UserSession.objects.get(user=member_ro, user_agent="phone")
    response = laptop.post(reverse("accounts:session_revoke", args=[target.public_id]))
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=target.session_id).exists()
    assert phone.get(SECURITY)["Location"].startswith(reverse("accounts:login"))
    assert laptop.get(SECURITY).status_code == 200
    event = AuditEvent.objects.get(action="user.session_revoked")
    assert event.actor_user_id == member_ro.pk
    assert event.changes["user_agent"] == "phone"


def test_the_current_session_cannot_be_revoked_from_the_list(member_ro, signed_in):
    client = signed_in(member_ro)
    current = UserSession.objects.get(user=member_ro)
    client.post(reverse("accounts:session_revoke", args=[current.public_id]))
    assert client.get(SECURITY).status_code == 200


def test_revoke_all_other_sessions_keeps_the_current_one(member_ro, other_org_user, signed_in):
    current = signed_in(member_ro, user_agent="current")
    others = [signed_in(member_ro, user_agent=f"other {n}") for n in range(2)]
    stranger = signed_in(other_org_user)
    response = current.post(reverse("accounts:sessions_revoke_others"))
    assert response.status_code == 302
    assert current.get(SECURITY).status_code == 200
    assert all(c.get(SECURITY).status_code == 302 for c in others)
    assert stranger.get(SECURITY).status_code == 200
    assert AuditEvent.objects.get(action="user.sessions_revoked").changes == {"count": 2}


def test_revocation_requires_post(member_ro, signed_in):
    client = signed_in(member_ro)
    assert client.get(reverse("accounts:sessions_revoke_others")).status_code == 405


def test_session_bookkeeping_leaves_a_request_without_a_session_alone(rf):
    """An agent's token request carries no session cookie: the middleware returns before resolving the
    (lazy) user, which would otherwise be loaded on every ingest request for nothing."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.http import HttpResponse
    from django.utils.functional import SimpleLazyObject

    from apps.accounts.middleware import SessionActivityMiddleware

    def unexpected() -> None:
        raise AssertionError("request.user was resolved")

    request = rf.post("/api/v1/write")
    request.session = SessionStore()
    request.user = SimpleLazyObject(unexpected)
    response = HttpResponse(status=204)
    assert SessionActivityMiddleware(lambda r: response)(request) is response
    assert not UserSession.objects.exists()
