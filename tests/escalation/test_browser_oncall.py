"""The on-call page in Chromium against the real ASGI server (tests/browser.py): an editor adds an
override through the form and sees it in the calendar and the list, then removes it; a viewer sees the
calendar without any form or button. No JavaScript errors, nothing fetched off 127.0.0.1 (teardown)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.escalation.models import ScheduleOverride
from tests.browser import asgi_server, browser, browser_pages, screenshot, signed_in_page  # noqa: F401  (fixtures)
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def test_editor_adds_and_removes_an_override_viewer_only_sees(request: pytest.FixtureRequest, org: Any,
                                                              editor: Any, owner: Any, member_ro: Any) -> None:
    sign_in = request.getfixturevalue("signed_in_page")
    schedule = OnCallScheduleFactory(organization=org, name="primary", time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, start_date=timezone.now().date(), handoff_time=dt.time(0),
                         users=[owner, editor])
    page = sign_in(editor, f"/{org.slug}/oncall/")
    now_row = page.locator(f'#oncall-now tr[data-schedule="{schedule.public_id}"]')
    assert owner.get_username() in now_row.locator("td[data-on-call]").inner_text()
    assert page.locator(f"#schedule-{schedule.public_id} tr[data-day]").count() == 15

    day = timezone.now().date() + dt.timedelta(days=2)
    page.select_option("#id_schedule", str(schedule.public_id))
    page.select_option("#id_user", label=member_ro.get_username())
    page.fill("#id_start", f"{day:%Y-%m-%d}T09:00")
    page.fill("#id_end", f"{day:%Y-%m-%d}T12:00")
    with page.expect_navigation():
        page.click("#override-form button[type=submit]")
    assert "covers primary" in page.locator(".flash").inner_text()
    segment = page.locator(f'#schedule-{schedule.public_id} tr[data-day="{day:%Y-%m-%d}"] .shift.override')
    assert segment.inner_text() == member_ro.get_username()
    assert segment.is_visible()
    screenshot(page, "oncall")

    override = ScheduleOverride.objects.get()
    with page.expect_navigation():
        page.locator(f'tr[data-override="{override.public_id}"]').get_by_role("button", name="Remove").click()
    assert not ScheduleOverride.objects.exists()
    assert page.locator(".shift.override").count() == 0

    # The pages share one browser context, so signing the viewer in replaces the editor's session.
    kept = ScheduleOverride.objects.create(organization=org, schedule=schedule, user=owner,
                                           start=timezone.now(), end=timezone.now() + dt.timedelta(hours=1))
    viewer = sign_in(member_ro, f"/{org.slug}/oncall/")
    assert viewer.locator(f'tr[data-override="{kept.public_id}"]').is_visible()
    assert viewer.locator("#override-form").count() == 0
    assert viewer.get_by_role("button", name="Remove").count() == 0
    assert "override" in viewer.locator(f'#oncall-now tr[data-schedule="{schedule.public_id}"]').inner_text()
