"""The overview in Chromium against the real ASGI server (tests/browser.py): a rollup tier stuck for 45
minutes is a visible warning, not just a number."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.metrics.rollups import jobs
from apps.metrics.rollups.models import RollupState
from tests.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def test_a_stuck_rollup_tier_shows_a_visible_warning(signed_in_page: Any, org: Any, member_ro: Any) -> None:
    jobs.run_rollups()
    RollupState.objects.filter(tier="1m").update(watermark=timezone.now() - dt.timedelta(minutes=45), dirty_from=None)
    page = signed_in_page(member_ro, f"/{org.slug}/")
    warning = page.get_by_role("alert")
    assert warning.is_visible()
    assert "the 1m tier is 45 min behind" in warning.inner_text()
    assert page.locator('tr[data-tier="1m"]').inner_text().count("stuck") == 1
    screenshot(page, "overview")
