"""The browser tests' own guard (tests/browser.py ``Pages``) can fail: a request to anywhere but 127.0.0.1
is aborted before it leaves and recorded, and a JavaScript error is recorded, so the teardown that asserts
"no problems" would fail the test that caused them."""

from __future__ import annotations

import pytest

from tests.browser import asgi_server, browser, browser_pages  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def test_a_foreign_request_is_aborted_and_recorded_and_a_script_error_too(request: pytest.FixtureRequest) -> None:
    pages = request.getfixturevalue("browser_pages")
    page = pages.new()
    page.goto(pages.server.url + "/accounts/login/")
    outcome = page.evaluate("""() => fetch('http://192.0.2.1/beacon').then(() => 'sent', () => 'blocked')""")
    page.evaluate("setTimeout(() => { throw new Error('boom'); }, 0)")
    page.wait_for_timeout(200)
    assert outcome == "blocked"
    assert pages.problems.foreign == ["http://192.0.2.1/beacon"]
    assert any("boom" in error for error in pages.problems.errors), pages.problems.errors
    with pytest.raises(AssertionError):
        pages.problems.assert_none()
    pages.problems.errors.clear()  # what this test provoked on purpose
    pages.problems.foreign.clear()
