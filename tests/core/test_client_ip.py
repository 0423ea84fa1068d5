"""`client_ip`: X-Forwarded-For is believed only from trusted proxies, right to left, and every
candidate must parse as an address."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from apps.core.client_ip import client_ip


def _ip(peer: str, forwarded: str | None = None) -> str | None:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=peer, **extra))


@pytest.fixture
def proxies(settings):
    settings.FIBERSTACK_TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.FIBERSTACK_TRUSTED_PROXIES = []
    assert _ip("198.51.100.9", "203.0.113.5") == "198.51.100.9"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(proxies):
    assert _ip("198.51.100.9", "10.0.0.1, 203.0.113.5") == "198.51.100.9"


@pytest.mark.parametrize(("forwarded", "expected"), [
    ("203.0.113.5", "203.0.113.5"),
    # The client forged the left-most entries; our proxies appended the real one and then their own.
    ("1.1.1.1, 192.0.2.66, 203.0.113.5, 10.1.2.3", "203.0.113.5"),
    ("2001:db8::7, fd00::1", "2001:db8::7"),
    ("::ffff:203.0.113.5", "203.0.113.5"),
    ("10.9.9.9, 10.1.1.1", "10.0.0.2"),  # only proxies: the peer
    ("", "10.0.0.2"),
])
def test_a_trusted_proxy_chain_yields_the_right_most_untrusted_address(proxies, forwarded, expected):
    assert _ip("10.0.0.2", forwarded) == expected


@pytest.mark.parametrize("forwarded", [
    "not-an-ip", "203.0.113.5, <script>", "203.0.113.5,", "999.1.1.1", "203.0.113.5:443", "1.2.3.4 5.6.7.8",
])
def test_garbage_in_the_header_falls_back_to_the_peer(proxies, forwarded):
    assert _ip("10.0.0.2", forwarded) == "10.0.0.2"


def test_a_peer_that_is_not_an_address_gives_none(settings):
    assert _ip("unix-socket") is None


def test_a_bad_network_in_settings_is_a_configuration_error(settings):
    settings.FIBERSTACK_TRUSTED_PROXIES = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured, match=r"10\.0\.0\.0/33"):
        _ip("10.0.0.2", "203.0.113.5")
