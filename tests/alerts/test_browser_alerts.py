"""The alert pages in Chromium against the real ASGI server (tests/browser.py): a firing alert committed by
another process appears in the open list without a reload (websocket -> fragment re-fetch), an editor
acknowledges it and sees the state change; a viewer sees no buttons and the server refuses the POST. Every
page is checked for JavaScript errors and requests that left 127.0.0.1 (the fixture's teardown)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.alerts.models import Alert
from apps.alerts.outcomes import Outcome
from apps.alerts.services.lifecycle import record_outcomes
from tests.alerts.factories import AlertFactory, AlertRuleFactory
from tests.browser import asgi_server, browser, browser_pages, screenshot, signed_in_page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]

#: The server runs the dev settings, whose channel layer prefix is base.py's; the suite's own layer has a
#: per-process prefix, so a broadcast from this process must use the server's to reach its consumers.
SERVER_CHANNEL_PREFIX = "fs:channels"
LIVE_ON = "() => document.getElementById('alerts-live-state').textContent === 'Live updates: on'"


def _in_another_thread(work: Callable[[], object]) -> None:
    """Playwright's sync API runs an event loop in the test's thread, where the services' async_to_sync
    broadcast cannot run; a worker thread (its own database connection, closed after) is another writer."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if failures:
        raise failures[0]


def _sign_in(request: pytest.FixtureRequest, user: Any, path: str) -> Any:
    # The fixtures come from tests/browser.py (imported above, as the hosts tests' conftest does).
    return request.getfixturevalue("signed_in_page")(user, path)


def test_a_firing_alert_appears_live_and_an_editor_acknowledges_it(request: pytest.FixtureRequest, org: Any,
                                                                    editor: Any, settings: Any) -> None:
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": SERVER_CHANNEL_PREFIX}}}
    rule = AlertRuleFactory(organization=org, name="cpu high", metric="cpu_usage_active", critical=90.0)
    page = _sign_in(request, editor, f"/{org.slug}/alerts/")
    assert "No firing alerts" in page.inner_text("#alert-table")
    page.wait_for_function(LIVE_ON, timeout=10000)
    page.evaluate("window.__notReloaded = true")

    # Committed outside the server, broadcast after commit, relayed by the server's consumer.
    _in_another_thread(lambda: record_outcomes(
        rule=rule, outcomes=[Outcome(labels={"host": "web-1"}, value=97.0, severity="critical", threshold=90.0)],
        at=timezone.now(), complete=False))
    alert = Alert.objects.get(rule=rule)
    row = f'tr[data-alert-id="{alert.public_id}"]'
    page.wait_for_selector(row, timeout=5000)
    assert page.evaluate("window.__notReloaded") is True
    assert "cpu high" in page.inner_text(row) and 'host="web-1"' in page.inner_text(row)
    screenshot(page, "alerts_list_live")

    with page.expect_navigation():
        page.click(f'{row} button[data-action="acknowledge"]')
    assert "Acknowledged cpu high." in page.inner_text("main")
    alert.refresh_from_db()
    assert alert.state == "acknowledged" and alert.acknowledged_by == editor
    page.goto(page.url.split("?")[0] + "?state=acknowledged")
    assert page.inner_text(f"{row} .badge.state-acknowledged") == "Acknowledged"
    assert "by erin" in page.inner_text(row)
    page.goto(page.url.split("?")[0] + f"{alert.public_id}/")
    assert "acknowledged" in page.inner_text("table.timeline")
    screenshot(page, "alert_detail")


def test_a_viewer_sees_no_buttons_and_cannot_post(request: pytest.FixtureRequest, org: Any, member_ro: Any) -> None:
    alert = AlertFactory(organization=org, labels={"alertname": "disk", "host": "db-1", "severity": "critical"})
    page = _sign_in(request, member_ro, f"/{org.slug}/alerts/")
    assert page.locator(f'tr[data-alert-id="{alert.public_id}"]').count() == 1
    assert page.locator("[data-action]").count() == 0
    page.goto(page.url + f"{alert.public_id}/")
    assert page.locator("[data-action]").count() == 0
    for path in ("rules/", "channels/", "silences/"):
        page.goto(page.url.split(f"/{org.slug}/")[0] + f"/{org.slug}/{path}")
        assert page.locator("[data-action]").count() == 0, path
    # The form a viewer is not shown is refused by the server too (a request outside the page's own
    # loads: the page-problem checks are for what the page itself does).
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    base = page.url.split(f"/{org.slug}/")[0]
    response = page.request.post(f"{base}/{org.slug}/alerts/{alert.public_id}/acknowledge",
                                 headers={"X-CSRFToken": csrf, "Referer": base + "/"}, form={"next": "/"})
    assert response.status == 403
    alert.refresh_from_db()
    assert alert.state == "firing"
    screenshot(page, "alerts_viewer_silences")
