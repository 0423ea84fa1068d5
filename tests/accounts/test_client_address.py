"""The sign-in throttle and the audit log see the client address from `apps.core.client_ip`: spoofed
X-Forwarded-For from an untrusted peer changes nothing, a trusted proxy's chain names the client, and
garbage falls back to the peer. Usernames are throttled in their NFKC, case-folded form."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from tests.accounts.conftest import login
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_limit(settings):
    settings.FIBERSTACK_LOGIN_RATE_LIMIT = 3
    settings.FIBERSTACK_LOGIN_RATE_WINDOW = 60


@pytest.fixture
def behind_proxy(settings):
    settings.FIBERSTACK_TRUSTED_PROXIES = ["10.0.0.0/8"]


def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape_the_address_limit(member_ro, small_limit,
                                                                                       behind_proxy):
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    for n, name in enumerate(["mallory", "trent", "eve"]):
        login(attacker, name, "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")
    assert login(attacker, "bob", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429
    ips = set(AuditEvent.objects.filter(action="user.login_failed").values_list("ip", flat=True))
    assert ips == {"198.51.100.66"}


def test_clients_behind_a_trusted_proxy_are_counted_and_audited_one_by_one(member_ro, small_limit, behind_proxy):
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    for name in ["mallory", "trent", "eve"]:
        login(proxy, name, "guess", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.7, 10.0.0.3")
    assert login(proxy, "bob", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Another client behind the same proxy is not locked out by the first one's failures.
    assert login(proxy, "bob", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302
    assert set(AuditEvent.objects.filter(action="user.login_failed").values_list("ip", flat=True)) == {"203.0.113.7"}
    assert AuditEvent.objects.get(action="user.login").ip == "203.0.113.8"
    proxy.get(reverse("accounts:security"), HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert UserSession.objects.get(user=member_ro).ip == "203.0.113.8"


def test_garbage_forwarded_for_from_a_trusted_proxy_counts_against_the_proxy(member_ro, small_limit, behind_proxy):
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    for junk in ["not-an-ip", "203.0.113.7, ' OR 1=1 --", "::g"]:
        assert login(proxy, "mallory", "guess", HTTP_X_FORWARDED_FOR=junk).status_code == 200
    assert set(AuditEvent.objects.filter(action="user.login_failed").values_list("ip", flat=True)) == {"10.0.0.2"}
    assert login(proxy, "bob", HTTP_X_FORWARDED_FOR="203.0.113.9, also junk").status_code == 429


@pytest.mark.parametrize("variants", [
    ["\uff42\uff4f\uff42", "\uff22\uff2f\uff22", "Bob"],  # fullwidth letters, in either case
    ["bob\u00a0", " bob", "BOB"],  # no-break space (NFKC makes it a space) and padding
])
def test_visually_equal_usernames_share_one_counter(member_ro, small_limit, variants):
    for n, variant in enumerate(variants):
        assert login(Client(REMOTE_ADDR=f"192.0.2.{n + 1}"), variant, "wrong password").status_code == 200
    assert login(Client(REMOTE_ADDR="192.0.2.99"), "bob").status_code == 429


def test_a_ligature_spelling_shares_the_counter_of_the_plain_username(db, small_limit):
    UserFactory(username="fiona")
    for n in range(3):
        login(Client(REMOTE_ADDR=f"192.0.2.{n + 1}"), "\ufb01ona", "wrong password")  # "ﬁona"
    assert login(Client(REMOTE_ADDR="192.0.2.99"), "fiona").status_code == 429


def test_the_ligature_spelling_signs_in_as_the_plain_username(db):
    user = UserFactory(username="fiona")
    client = Client()
    assert login(client, "\ufb01ona").status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
