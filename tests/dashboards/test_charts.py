"""Charts: uPlot is served from our static files, the host page renders a chart per metric group the host
has (with read-API URLs that answer for the signed-in user), and the rest of its series in a selector."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from apps.core.roles import Role
from apps.dashboards.charts import UPLOT_CSS, UPLOT_JS, series_query
from apps.hosts.models import Host
from tests.hosts.factories import HostFactory
from tests.metrics.factories import post
from tests.organizations.factories import MembershipFactory

pytestmark = pytest.mark.django_db

UPLOT_DIST = settings.NODE_MODULES_DIR / "uplot" / "dist"
needs_uplot = pytest.mark.skipif(not UPLOT_DIST.is_dir(), reason="node_modules/uplot is missing: run `npm ci` "
                                                                  "(make test runs it)")


@needs_uplot
@pytest.mark.parametrize("path", [UPLOT_JS, UPLOT_CSS])
def test_uplot_is_found_by_the_staticfiles_finders(path: str) -> None:
    found = finders.find(path)
    assert found is not None
    assert str(found).startswith(str(UPLOT_DIST))


@needs_uplot
def test_uplot_is_the_pinned_npm_version() -> None:
    package = json.loads((settings.BASE_DIR / "package.json").read_text())
    installed = json.loads((settings.NODE_MODULES_DIR / "uplot" / "package.json").read_text())
    assert package["dependencies"]["uplot"] == installed["version"]


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _push(token: str, host: str, items: list[tuple[str, dict[str, str]]], count: int = 3) -> None:
    now = time.time()
    body = [{"host": host, "name": name, "labels": labels, "value": float(i), "time": now - 60 * i}
            for name, labels in items for i in range(count)]
    response = post("/api/v1/metrics", json.dumps({"metrics": body}), token=token, content_type="application/json")
    assert response.status_code == 200, response.content


def _figures(html: str) -> dict[str, str]:
    """data-chart-key -> data-query of each chart figure in the page."""
    out = {}
    for chunk in html.split("<figure")[1:]:
        attrs = chunk.split(">", 1)[0]
        key = attrs.split('data-chart-key="', 1)[1].split('"', 1)[0]
        out[key] = attrs.split('data-query="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    return out


@pytest.fixture
def web1(org: Any, write_token: str) -> Host:
    _push(write_token, "web-1", [
        ("cpu_usage_active", {}), ("mem_used_percent", {}), ("system_load1", {}), ("system_load5", {}),
        ("net_bytes_recv", {"interface": "eth0"}), ("disk_used_percent", {"path": "/"}), ("agent_info", {}),
    ])
    return Host.objects.get(organization=org, name="web-1")


def test_host_page_renders_a_chart_per_metric_group_with_api_urls(member_ro: Any, org: Any, web1: Host) -> None:
    response = _client(member_ro).get(reverse("hosts:detail", args=[org.slug, web1.public_id]))
    assert response.status_code == 200
    html = response.content.decode()
    figures = _figures(html)
    assert list(figures) == ["cpu", "memory", "load", "network", "other"]
    assert figures["cpu"] == "org=acme&host=web-1&name=cpu_usage_active"
    assert figures["memory"] == "org=acme&host=web-1&name=mem_used_percent"
    assert dict(parse_qsl(figures["load"])) == {"org": "acme", "host": "web-1",
                                                "match[]": '{__name__=~"system_load1|system_load5"}'}
    assert figures["network"] == "org=acme&host=web-1&name=net_bytes_recv"  # only the names the host has
    assert 'data-api="/api/v1/metrics"' in html
    assert 'data-chart-key="cpu"' in html and 'data-p95="1"' in html
    assert 'data-rate="1"' in html  # the network counters are drawn as rates
    assert "<option>disk_used_percent</option><option>agent_info</option>" in html  # key metrics first
    assert "vendor/uplot/uPlot.iife.min.js" in html and "js/charts.js" in html
    for label in ("1h", "6h", "24h", "7d", "30d"):
        assert f">{label}</button>" in html


@pytest.mark.parametrize("agg", ["avg", "p95", "last"])
def test_chart_urls_answer_for_a_session_user_in_several_orgs(member_ro: Any, org: Any, other_org: Any,
                                                              web1: Host, agg: str) -> None:
    """The page's fetch is same-origin with the session cookie; org= picks the organization."""
    MembershipFactory(organization=other_org, user=member_ro, role=Role.VIEWER)
    client = _client(member_ro)
    html = client.get(reverse("hosts:detail", args=[org.slug, web1.public_id])).content.decode()
    now = int(time.time())
    for key, query in _figures(html).items():
        response = client.get(f"/api/v1/metrics?{query}&start={now - 3600}&end={now}&step=10&agg={agg}")
        assert response.status_code == 200, (key, response.content)
        body = response.json()
        assert body["tier"] == "raw" and body["step"] == 10
        assert body["series"], key
        assert all(s["host"] == "web-1" for s in body["series"])


def test_chart_url_of_another_org_gets_404(other_org_user: Any) -> None:
    query = series_query("acme", ["cpu_usage_active"], "web-1")
    assert _client(other_org_user).get(f"/api/v1/metrics?{query}").status_code == 404


def test_host_without_metrics_says_so(member_ro: Any, org: Any) -> None:
    host = HostFactory(organization=org, name="quiet")
    html = _client(member_ro).get(reverse("hosts:detail", args=[org.slug, host.public_id])).content.decode()
    assert "No metrics received from this host yet." in html
    assert "<figure" not in html


def test_host_page_shows_only_its_own_series(member_ro: Any, org: Any, web1: Host, write_token: str) -> None:
    _push(write_token, "web-2", [("only_on_web2", {})])
    html = _client(member_ro).get(reverse("hosts:detail", args=[org.slug, web1.public_id])).content.decode()
    assert "only_on_web2" not in html
    assert escape("host=web-1") in html
