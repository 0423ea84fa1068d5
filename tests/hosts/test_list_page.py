"""The host list and host page as on-call staff read them: names in natural order, "last seen" as a relative
time (absolute time in the title), current CPU / memory / load with sparklines read through the metrics
read side, inventory columns filled from the labels agents push -- and both pages with Redis unreachable."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from apps.hosts.models import Host
from apps.metrics import hot
from fiberstack.settings.base import CACHES
from tests.hosts.factories import HostFactory
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db

UNREACHABLE = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _push_json(token: str, host: str, values: dict[str, list[float]]) -> None:
    """Each metric's values five minutes apart -- one per sparkline step, so n values are n points -- the last
    one 30 s ago (through the real JSON door)."""
    now = time.time() - 30
    body = [{"host": host, "name": name, "value": value, "time": now - 300 * (len(seq) - 1 - i)}
            for name, seq in values.items() for i, value in enumerate(seq)]
    response = post("/api/v1/metrics", json.dumps({"metrics": body}), token=token, content_type="application/json")
    assert response.status_code == 200, response.content


def _names_in_order(html: str) -> list[str]:
    return re.findall(r'data-host-name="([^"]+)"', html)


def _cell(html: str, host: str, metric: str) -> str:
    row = html.split(f'data-host-name="{host}"', 1)[1].split("</tr>", 1)[0]
    return row.split(f'data-metric="{metric}">', 1)[1].split("</td>", 1)[0]


def test_host_names_sort_naturally(member_ro: Any, org: Any) -> None:
    for name in ["host_10", "host_2", "host_1", "db-10", "db-9", "host_2a", "rack2-node10", "rack2-node9"]:
        HostFactory(organization=org, name=name)
    html = _client(member_ro).get(f"/{org.slug}/hosts/").content.decode()
    assert _names_in_order(html) == ["db-9", "db-10", "host_1", "host_2", "host_2a", "host_10",
                                     "rack2-node9", "rack2-node10"]


def test_last_seen_is_relative_with_the_absolute_time_in_the_title(member_ro: Any, org: Any) -> None:
    seen = timezone.now() - dt.timedelta(seconds=12)
    host = HostFactory(organization=org, name="web-1", last_seen_at=seen)
    HostFactory(organization=org, name="never-seen", last_seen_at=None)
    client = _client(member_ro)
    for url in (f"/{org.slug}/hosts/", f"/{org.slug}/hosts/{host.public_id}/"):
        html = client.get(url).content.decode()
        match = re.search(r'<time data-relative datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', html)
        assert match, url
        assert dt.datetime.fromisoformat(match[1]) == seen
        assert match[2] == seen.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        assert re.fullmatch(r"1[2-4] s ago", match[3]), match[3]
        assert "relative_time.js" in html
    assert "never" in _cell_row(client.get(f"/{org.slug}/hosts/").content.decode(), "never-seen")


def _cell_row(html: str, host: str) -> str:
    return html.split(f'data-host-name="{host}"', 1)[1].split("</tr>", 1)[0]


def test_list_shows_current_cpu_memory_and_load_with_sparklines(member_ro: Any, org: Any, write_token: str) -> None:
    _push_json(write_token, "web-1", {"cpu_usage_active": [10.0, 20.0, 42.5], "mem_used_percent": [61.0, 63.0],
                                      "system_load1": [0.25, 0.5, 0.75]})
    _push_json(write_token, "web-2", {"node_load1": [3.0, 1.5]})  # a Prometheus node_exporter host
    HostFactory(organization=org, name="quiet")
    html = _client(member_ro).get(f"/{org.slug}/hosts/").content.decode()
    assert "<th>CPU</th><th>Memory</th><th>Load</th>" in html
    cpu = _cell(html, "web-1", "cpu")
    assert "42.5 %" in cpu
    assert len(re.search(r'<polyline points="([^"]+)"', cpu)[1].split()) == 3  # one point per 5-minute step
    assert "63.0 %" in _cell(html, "web-1", "memory")
    assert "0.75" in _cell(html, "web-1", "load")
    assert "1.50" in _cell(html, "web-2", "load") and "—" in _cell(html, "web-2", "cpu")
    assert "—" in _cell(html, "quiet", "cpu") and "<svg" not in _cell(html, "quiet", "cpu")


def test_key_metrics_come_from_postgresql_when_the_hot_tier_lacks_them(member_ro: Any, org: Any,
                                                                       write_token: str) -> None:
    _push_json(write_token, "web-1", {"cpu_usage_active": [5.0, 7.0]})
    host = Host.objects.get(organization=org, name="web-1")
    hot._redis().delete(hot.host_key(org.pk, host.pk), hot.org_key(org.pk))
    html = _client(member_ro).get(f"/{org.slug}/hosts/").content.decode()
    assert "7.00 %" in _cell(html, "web-1", "cpu")


def test_another_organizations_series_never_fill_our_columns(member_ro: Any, org: Any, other_org: Any,
                                                             make_token: Any) -> None:
    HostFactory(organization=org, name="web-1")
    _push_json(make_token(organization=other_org)[1], "web-1", {"cpu_usage_active": [99.0]})
    html = _client(member_ro).get(f"/{org.slug}/hosts/").content.decode()
    assert "99" not in _cell(html, "web-1", "cpu")


def test_labels_pushed_with_metrics_fill_the_inventory_columns(member_ro: Any, org: Any, write_token: str) -> None:
    line = ("cpu,hostname=host_7,datacenter=eu-central-1a,region=eu-central-1,environment=production "
            f"usage_active=3 {int(time.time())}000000000\n")
    assert post("/api/v1/write?precision=ns", line, token=write_token).status_code == 204
    host = Host.objects.get(organization=org, name="host_7")
    assert (host.datacenter, host.region, host.environment) == ("eu-central-1a", "eu-central-1", "production")
    row = _cell_row(_client(member_ro).get(f"/{org.slug}/hosts/").content.decode(), "host_7")
    assert "<td>production</td><td>eu-central-1a</td><td>eu-central-1</td>" in row


@override_settings(CACHES=UNREACHABLE)
def test_host_pages_work_from_postgresql_with_redis_unreachable(member_ro: Any, org: Any, write_token: str,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _push_json(write_token, "web-1", {"cpu_usage_active": [11.0, 12.0], "go_gc_duration_seconds": [0.0004]})
    host = Host.objects.get(organization=org, name="web-1")
    assert host.last_seen_at is not None  # fail open: seen without the throttle
    client = _client(member_ro)
    started = time.monotonic()
    listing = client.get(f"/{org.slug}/hosts/")
    detail = client.get(f"/{org.slug}/hosts/{host.public_id}/")
    assert time.monotonic() - started < 3.0
    assert listing.status_code == detail.status_code == 200
    html = listing.content.decode()
    assert "12.0 %" in _cell(html, "web-1", "cpu") and "s ago</time>" in html
    page = detail.content.decode()
    assert 'data-chart-key="cpu"' in page and "<option>go_gc_duration_seconds</option>" in page
    assert "s ago</time>" in page


def test_sparklines_are_cached_briefly_while_current_values_stay_live(member_ro: Any, org: Any, write_token: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.dashboards import host_metrics

    windows = []
    real_window = host_metrics.read.window
    monkeypatch.setattr(host_metrics.read, "window", lambda *a, **k: windows.append(1) or real_window(*a, **k))
    _push_json(write_token, "web-1", {"cpu_usage_active": [10.0, 20.0, 42.5]})
    client = _client(member_ro)
    client.get(f"/{org.slug}/hosts/")
    _push_json(write_token, "web-1", {"cpu_usage_active": [77.0]})
    html = client.get(f"/{org.slug}/hosts/").content.decode()
    assert len(windows) == 1  # the second page view drew the sparklines from the cache
    cpu = _cell(html, "web-1", "cpu")
    assert "77.0 %" in cpu  # the current value is never cached
    assert len(re.search(r'<polyline points="([^"]+)"', cpu)[1].split()) == 3  # the cached line

    host_metrics.cache.delete_pattern("dashboards:spark:*")  # what expiry does after SPARK_CACHE_SECONDS
    assert host_metrics.SPARK_CACHE_SECONDS <= 30
    client.get(f"/{org.slug}/hosts/")
    assert len(windows) == 2
