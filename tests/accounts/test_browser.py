"""Signing in with two-factor in Chromium against the real ASGI server (tests/browser.py): the password
alone leaves a user with an authenticator at the code prompt, not signed in -- a host page sends the browser
back to the login --
and the code the authenticator shows (computed with django-otp, as the server checks it) lets the browser
through to the page, whose live charts websocket admits the verified session."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.browser import PASSWORD, Pages, enter_totp, screenshot, usable_password
from tests.hosts.factories import HostFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]

VERIFY = "/accounts/login/verify/"


def test_a_user_with_an_authenticator_needs_the_code_to_reach_a_host_page(
        browser_pages: Pages, org: Any, member_ro: Any) -> None:
    device = TOTPDevice.objects.create(user=member_ro, name="Authenticator app", confirmed=True)
    host = HostFactory(organization=org, name="web-1")
    host_page = f"/{org.slug}/hosts/{host.public_id}/"
    usable_password(member_ro)
    page = browser_pages.new()
    page.goto(f"{browser_pages.server.url}/accounts/login/?next={host_page}")
    page.fill("input[name=username]", member_ro.get_username())
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == VERIFY, page.url

    # The password alone does not open the page: until the code step the session is not signed in.
    page.goto(browser_pages.server.url + host_page)
    assert urlsplit(page.url).path == "/accounts/login/", page.url
    page.goto(f"{browser_pages.server.url}{VERIFY}?next={host_page}")
    assert f"Signing in as {member_ro.get_username()}" in page.inner_text("main")
    screenshot(page, "login_verify")

    enter_totp(page, device)
    assert urlsplit(page.url).path == host_page, page.url
    assert "web-1" in page.inner_text("h1")
    # The charts' websocket admits this session only because it passed the second factor.
    page.wait_for_selector("#host-charts[data-live=on]", timeout=10000)


def test_signed_in_page_signs_in_with_the_code_of_an_enrolled_owner(signed_in_page: Any, owner: Any) -> None:
    device = TOTPDevice.objects.create(user=owner, name="Authenticator app", confirmed=True)
    page = signed_in_page(owner, "/accounts/security/", device=device)
    assert "Turn off two-factor" in page.inner_text("main")
