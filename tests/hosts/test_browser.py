"""The host pages in Chromium against the real ASGI server (tests/browser.py): names in natural order,
"last seen" relative and ticking, a host row updated live over the websocket when an agent pushes (no
reload), y-axis ticks of small values that differ, and the series picker opening at a key metric. Every
page is also checked for JavaScript errors and requests that left 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from typing import Any

import pytest
from django.utils import timezone

from apps.organizations.models import AgentToken
from tests.browser import LiveServer, screenshot
from tests.hosts.factories import HostFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def _push(server: LiveServer, token: str, host: str, values: dict[str, list[float]]) -> None:
    """An agent's push through the server's JSON door: each metric's values one minute apart, up to now."""
    now = time.time()
    body = [{"host": host, "name": name, "value": value, "time": now - 60 * (len(seq) - 1 - i)}
            for name, seq in values.items() for i, value in enumerate(seq)]
    status, reply = server.post_json("/api/v1/metrics", {"metrics": body}, token)
    assert status == 200, reply


def _row_texts(page: Any) -> list[str]:
    return page.locator("#hosts-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.hostName)")


def test_host_list_natural_order_relative_last_seen_and_a_live_row_update(
        signed_in_page: Any, asgi_server: LiveServer, org: Any, member_ro: Any, make_token: Any) -> None:
    now = timezone.now()
    HostFactory(organization=org, name="host_10", last_seen_at=now - dt.timedelta(seconds=12))
    HostFactory(organization=org, name="host_2", last_seen_at=now - dt.timedelta(minutes=10))
    HostFactory(organization=org, name="host_1", last_seen_at=None)
    token = make_token(AgentToken.Scope.WRITE)[1]
    page = signed_in_page(member_ro, f"/{org.slug}/hosts/")

    assert _row_texts(page) == ["host_1", "host_2", "host_10"]

    seen = page.locator('tr[data-host-name="host_10"] time[data-relative]')
    first = seen.inner_text()
    assert re.fullmatch(r"1[2-9] s ago", first), first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", seen.get_attribute("title") or "")
    page.wait_for_function("el => el.textContent !== arguments[1]".replace("arguments[1]", json.dumps(first)),
                           arg=seen.element_handle(), timeout=3000)  # it keeps counting without a reload

    row = 'tr[data-host-name="host_2"]'
    assert page.inner_text(f"{row} [data-field=status]") == "down"
    assert page.inner_text(f"{row} time[data-relative]") == "10 min ago"
    page.wait_for_selector("#hosts-table[data-live=on]", timeout=5000)
    page.evaluate("window.__notReloaded = true")
    _push(asgi_server, token, "host_2", {"cpu_usage_active": [3.0]})
    page.wait_for_function(
        f"""() => document.querySelector('{row} [data-field=status]').textContent === 'up'
                  && /^[0-9] s ago$/.test(document.querySelector('{row} time[data-relative]').textContent)""",
        timeout=5000)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "hosts_list")


def _y_ticks(page: Any, figure: str) -> list[str]:
    handle = page.wait_for_function(f"() => document.querySelector('{figure}').dataset.yTicks", timeout=10000)
    return json.loads(handle.json_value())


def test_host_chart_ticks_of_small_values_differ_and_the_picker_opens_at_a_key_metric(
        signed_in_page: Any, asgi_server: LiveServer, org: Any, member_ro: Any, make_token: Any) -> None:
    token = make_token(AgentToken.Scope.WRITE)[1]
    _push(asgi_server, token, "web-1", {
        "cpu_usage_active": [0.011, 0.014, 0.012, 0.019, 0.013],
        "go_gc_duration_seconds": [0.00012, 0.00031, 0.00018, 0.00044],
        "mem_available": [2.1e9, 2.2e9], "agent_info": [1.0, 1.0],
    })
    host = org.hosts.get(name="web-1")
    page = signed_in_page(member_ro, f"/{org.slug}/hosts/{host.public_id}/")

    cpu = _y_ticks(page, 'figure[data-chart-key="cpu"]')
    assert len(cpu) > 1 and len(set(cpu)) == len(cpu), cpu
    assert all(tick.endswith("%") for tick in cpu) and "0.00 %" not in cpu[1:], cpu

    picker = page.locator("select[data-chart-select]")
    assert picker.input_value() == "mem_available"  # not go_gc_duration_seconds, the first by name
    assert picker.locator("option").all_inner_texts() == ["mem_available", "agent_info", "go_gc_duration_seconds"]

    other = 'figure[data-chart-key="other"]'
    page.wait_for_function(f"() => document.querySelector('{other}').dataset.yTicks", timeout=10000)
    page.evaluate(f"delete document.querySelector('{other}').dataset.yTicks")
    picker.select_option("go_gc_duration_seconds")
    seconds = _y_ticks(page, other)
    assert len(seconds) > 1 and len(set(seconds)) == len(seconds), seconds
    assert all(re.fullmatch(r"[0-9.]+ (µs|ms)", tick) for tick in seconds), seconds
    screenshot(page, "host_detail")


def _figure_state(page: Any, figure: str) -> dict[str, Any]:
    """What a chart drew: its x values, its legend's labels and the non-null values of each line."""
    return page.evaluate(f"""() => {{
        const f = document.querySelector('{figure}');
        const plot = f._plot;
        return {{points: Number(f.dataset.points || 0),
                 legend: Array.from(f.querySelectorAll('.u-legend .u-series .u-label')).map(e => e.textContent),
                 values: plot ? plot.data.slice(1).map(ys => ys.filter(v => v !== null).length) : []}};
    }}""")


def test_a_host_chart_gets_new_points_without_a_reload_and_draws_a_p95_line(
        signed_in_page: Any, asgi_server: LiveServer, org: Any, member_ro: Any, make_token: Any) -> None:
    token = make_token(AgentToken.Scope.WRITE)[1]
    past = time.time() - 120
    status, reply = asgi_server.post_json("/api/v1/metrics", {"metrics": [
        {"host": "web-1", "name": "cpu_usage_active", "value": v, "time": past - 60 * i}
        for i, v in enumerate((10.0, 30.0, 20.0, 90.0, 15.0))]}, token)
    assert status == 200, reply
    host = org.hosts.get(name="web-1")
    page = signed_in_page(member_ro, f"/{org.slug}/hosts/{host.public_id}/")
    cpu = 'figure[data-chart-key="cpu"]'
    page.wait_for_selector("#host-charts[data-live=on]", timeout=10000)
    page.wait_for_function(f"() => Number(document.querySelector('{cpu}').dataset.points) > 0", timeout=10000)
    before = _figure_state(page, cpu)

    # The p95 per step is a second, dashed series with its own legend entry, drawn from the read API.
    assert before["legend"] == ["Time", "cpu_usage_active", "cpu_usage_active p95"], before
    assert before["values"][0] == before["points"] == 5 and before["values"][1] == 5, before

    page.evaluate("window.__notReloaded = true")
    step = page.evaluate(f"() => document.querySelector('{cpu}')._live.step")
    assert step == 10  # the 1 h range's step
    bucket = (int(time.time()) // step + 1) * step  # the next 10 s bucket (a little ahead of now)

    def agent_push(value: float, at: float) -> None:
        """An agent pushes from another thread through the server's HTTP door while the page is open."""
        pushed: list[tuple[int, bytes]] = []
        agent = threading.Thread(target=lambda: pushed.append(asgi_server.post_json("/api/v1/metrics", {
            "metrics": [{"host": "web-1", "name": "cpu_usage_active", "value": value, "time": at}]}, token)))
        agent.start()
        agent.join(timeout=15)
        assert pushed and pushed[0][0] == 200, pushed

    agent_push(55.0, bucket + 1)
    page.wait_for_function(f"() => Number(document.querySelector('{cpu}').dataset.points) > {before['points']}",
                           timeout=10000)
    after = _figure_state(page, cpu)
    assert after["points"] == before["points"] + 1 and after["values"][0] == 6, after

    # A second point in the same step updates that bucket (the mean of the two) instead of adding one.
    agent_push(75.0, bucket + 6)
    last = f"() => {{ const d = document.querySelector('{cpu}')._plot.data; return d[1][d[1].length - 1]; }}"
    page.wait_for_function(f"() => ({last})() === 65", timeout=10000)
    assert _figure_state(page, cpu)["points"] == after["points"]
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "host_detail_live")
