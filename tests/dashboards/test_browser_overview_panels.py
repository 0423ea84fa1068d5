"""The overview's alerting, on-call and map panels in Chromium (tests/browser.py): the host map draws one
colored point per located host without fetching anything off 127.0.0.1, the firing count links to the
filtered alert list, and the on-call panel names who is on now."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.alerts.factories import AlertFactory
from tests.browser import screenshot
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory
from tests.hosts.factories import HostFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def test_overview_map_alerts_and_on_call(signed_in_page: Any, org: Any, member_ro: Any, owner: Any) -> None:
    now = timezone.now()
    HostFactory(organization=org, name="fra-1", latitude=50.1, longitude=8.7, last_seen_at=now)
    HostFactory(organization=org, name="nyc-1", latitude=40.7, longitude=-74.0, last_seen_at=now - dt.timedelta(days=1))
    HostFactory(organization=org, name="syd-1", latitude=-33.9, longitude=151.2, last_seen_at=now)
    AlertFactory(organization=org, severity="critical", labels={"alertname": "cpu_high", "host": "fra-1"})
    schedule = OnCallScheduleFactory(organization=org, name="primary", time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, start_date=now.date(), handoff_time=dt.time(0), users=[owner])
    page = signed_in_page(member_ro, f"/{org.slug}/")
    assert page.locator("#host-map circle").count() == 3
    assert page.locator("#host-map circle.down").count() == 1
    box = page.locator("#host-map svg").bounding_box()
    assert box is not None and box["width"] > 300
    assert owner.get_username() in page.locator(f'#on-call tr[data-schedule="{schedule.public_id}"]').inner_text()
    screenshot(page, "overview_panels")
    with page.expect_navigation():
        page.locator('a[data-firing="critical"]').click()
    assert page.url.endswith("/acme/alerts/?state=firing&severity=critical")
    assert "cpu_high" in page.content()
