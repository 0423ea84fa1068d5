"""A saved dashboard in Chromium against the real ASGI server (tests/browser.py): samples pushed through the
agent door, a dashboard of two widgets (one filtered by a label matcher), and both charts drawn by
static/js/charts.js from GET /api/v1/metrics, the matcher applied; ``?range=`` reproduces the view; a widget
gets the points of a push made while the page is open, without a reload (ws/<org>/dashboards/live/)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from apps.organizations.models import AgentToken
from tests.browser import LiveServer, screenshot
from tests.dashboards.saved_factories import SavedDashboardFactory, widget

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def _push(server: LiveServer, token: str, host: str, name: str, values: list[float], labels: dict[str, str]) -> None:
    now = time.time()
    body = [{"host": host, "name": name, "value": value, "labels": labels, "time": now - 60 * (len(values) - 1 - i)}
            for i, value in enumerate(values)]
    status, reply = server.post_json("/api/v1/metrics", {"metrics": body}, token)
    assert status == 200, reply


def _drawn(page: Any, key: str) -> dict[str, Any]:
    """Wait until the widget's chart is drawn (uPlot's canvas and y ticks), then what it shows."""
    figure = f'figure[data-chart-key="{key}"]'
    page.wait_for_function(f"() => document.querySelector('{figure}').dataset.yTicks"
                           f" && document.querySelector('{figure} canvas')", timeout=15000)
    return {"ticks": json.loads(page.locator(figure).get_attribute("data-y-ticks") or "[]"),
            "meta": page.inner_text(f"{figure} .chart-meta"),
            "legend": page.locator(f"{figure} .u-legend .u-series th").all_inner_texts()}


def test_a_saved_dashboard_draws_its_widgets_with_data(
        signed_in_page: Any, asgi_server: LiveServer, org: Any, member_ro: Any, make_token: Any) -> None:
    token = make_token(AgentToken.Scope.WRITE)[1]
    _push(asgi_server, token, "web-1", "cpu_usage_active", [12.0, 18.5, 15.0, 22.0, 19.5], {"env": "prod"})
    _push(asgi_server, token, "web-2", "cpu_usage_active", [40.0, 42.0, 41.0], {"env": "staging"})
    _push(asgi_server, token, "web-1", "mem_used_percent", [61.0, 62.5, 63.0], {"env": "prod"})
    board = SavedDashboardFactory(organization=org, name="Web tier", widgets=[
        widget(title="Prod CPU", metric="cpu_usage_active", labels='env="prod"', agg="max", width=6),
        widget(title="Memory", metric="mem_used_percent", range="6h", width=6)])

    page = signed_in_page(member_ro, f"/{org.slug}/dashboards/{board.public_id}/")
    cpu, memory = _drawn(page, "w0"), _drawn(page, "w1")
    assert "1 series" in cpu["meta"], cpu  # the matcher kept web-1's prod series only
    assert any("web-1 cpu_usage_active{env=prod}" in text for text in cpu["legend"]), cpu
    assert len(cpu["ticks"]) > 1 and len(set(cpu["ticks"])) == len(cpu["ticks"]), cpu
    assert "1 series" in memory["meta"], memory
    assert page.inner_text('figure[data-chart-key="w0"] figcaption').startswith("Prod CPU")
    assert page.locator('[data-action="edit-dashboard"]').count() == 0  # a viewer sees no edit button
    screenshot(page, "saved_dashboard")

    page.click('[data-range-link="24h"]')
    page.wait_for_url("**?range=24h")
    assert page.locator('[data-chart-group] [data-range="86400"].active').count() == 2
    assert "1 series" in _drawn(page, "w0")["meta"]


def test_an_editor_reorders_removes_and_adds_widgets_in_the_browser(
        signed_in_page: Any, asgi_server: LiveServer, org: Any, editor: Any) -> None:
    board = SavedDashboardFactory(organization=org, name="Ops", widgets=[
        widget(title="First", metric="a_metric"), widget(title="Second", metric="b_metric"),
        widget(title="Third", metric="c_metric")])
    page = signed_in_page(editor, f"/{org.slug}/dashboards/{board.public_id}/edit/")
    forms = page.locator("[data-widget-form]")
    forms.nth(1).locator("[data-widget-up]").click()          # Second, First, Third
    forms.nth(2).locator('input[name$="-DELETE"]').check()    # remove Third
    page.click("[data-widget-add]")
    new = page.locator("[data-widget-form]").last
    new.locator('input[name$="-metric"]').fill("d_metric")
    new.locator('input[name$="-labels"]').fill('job="node"')
    new.locator('select[name$="-range"]').select_option("7d")
    with page.expect_navigation():
        page.click("button[type=submit]")
    board.refresh_from_db()
    assert [w["metric"] for w in board.widgets] == ["b_metric", "a_metric", "d_metric"]
    assert board.widgets[2]["labels"] == 'job="node"' and board.widgets[2]["range"] == "7d"
    assert page.locator('figure[data-chart-key="w2"] figcaption').inner_text().startswith("d_metric")


def test_a_saved_dashboard_widget_gets_new_points_without_a_reload(
        signed_in_page: Any, asgi_server: LiveServer, org: Any, member_ro: Any, make_token: Any) -> None:
    token = make_token(AgentToken.Scope.WRITE)[1]
    past = time.time() - 120
    status, reply = asgi_server.post_json("/api/v1/metrics", {"metrics": [
        {"host": host, "name": "cpu_usage_active", "value": v, "time": past - 60 * i}
        for i, v in enumerate((10.0, 30.0, 20.0)) for host in ("web-1", "web-2")]}, token)
    assert status == 200, reply
    board = SavedDashboardFactory(organization=org, name="Fleet", widgets=[
        widget(title="CPU", metric="cpu_usage_active", agg="max", width=12)])

    page = signed_in_page(member_ro, f"/{org.slug}/dashboards/{board.public_id}/")
    cpu = 'figure[data-chart-key="w0"]'
    page.wait_for_selector("#saved-dashboard[data-live=on]", timeout=10000)
    page.wait_for_function(f"() => Number(document.querySelector('{cpu}').dataset.points) > 0", timeout=10000)
    before = int(page.locator(cpu).get_attribute("data-points") or 0)
    assert before == 3, before
    page.evaluate("window.__notReloaded = true")
    assert page.locator("#saved-dashboard").get_attribute("data-live-frames") is None

    # An agent pushes for one of the widget's hosts from another thread through the server's HTTP door.
    pushed: list[tuple[int, bytes]] = []
    agent = threading.Thread(target=lambda: pushed.append(asgi_server.post_json("/api/v1/metrics", {
        "metrics": [{"host": "web-2", "name": "cpu_usage_active", "value": 77.0, "time": time.time()}]}, token)))
    agent.start()
    agent.join(timeout=15)
    assert pushed and pushed[0][0] == 200, pushed
    page.wait_for_function(f"() => Number(document.querySelector('{cpu}').dataset.points) > {before}",
                           timeout=15000)
    assert int(page.locator(cpu).get_attribute("data-points") or 0) == before + 1  # a new bucket, appended
    assert int(page.locator("#saved-dashboard").get_attribute("data-live-frames") or 0) >= 1  # a notice did it
    newest = page.evaluate(f"""() => {{ const d = document.querySelector('{cpu}')._plot.data;
        return d.slice(1).map(ys => ys[ys.length - 1]); }}""")
    assert sorted(newest, key=lambda v: v is None) == [77.0, None], newest  # web-2's line only
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "saved_dashboard_live")
