"""The host list on a fleet: 100 hosts a page in natural name order, every filter (repeated tags too) kept on
the pager's links, and a fixed number of SQL statements per page whatever the fleet size or the metrics
each host has (the key-metric columns are one read for the whole page, not one per host)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.hosts.links import host_detail_url
from apps.hosts.models import Host
from apps.hosts.views import PAGE_SIZE
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _fleet(org: Any, count: int, start: int = 1, **fields: Any) -> None:
    now = timezone.now()
    Host.objects.bulk_create([Host(organization=org, name=f"web-{i}", last_seen_at=now, **fields)
                              for i in range(start, start + count)])


def _names(html: str) -> list[str]:
    return re.findall(r'data-host-name="([^"]+)"', html)


def _pager_links(html: str) -> dict[str, dict[str, list[str]]]:
    pager = html.split('<p class="pager">', 1)[1].split("</p>", 1)[0]
    return {label: parse_qs(href.replace("&amp;", "&").lstrip("?"))
            for href, label in re.findall(r'<a href="([^"]+)">(previous|next)</a>', pager)}


def test_the_list_shows_100_hosts_a_page_in_natural_order(member_ro: Any, org: Any) -> None:
    _fleet(org, 250)
    client = _client(member_ro)
    url = reverse("hosts:list", args=[org.slug])
    first = client.get(url).content.decode()
    assert _names(first) == [f"web-{i}" for i in range(1, PAGE_SIZE + 1)]
    assert "page 1 of 3 (250 hosts)" in first
    last = client.get(url, {"page": 3}).content.decode()
    assert _names(last) == [f"web-{i}" for i in range(201, 251)]
    assert set(_pager_links(last)) == {"previous"}
    assert _names(client.get(url, {"page": 99}).content.decode()) == _names(last)  # past the end: the last page


def test_the_pager_keeps_every_filter(member_ro: Any, org: Any) -> None:
    _fleet(org, 150, environment="production", tags={"team": "edge", "tier": "1"})
    _fleet(org, 30, start=1000, environment="staging", tags={"team": "edge", "tier": "1"})
    client = _client(member_ro)
    response = client.get(reverse("hosts:list", args=[org.slug]),
                          {"environment": "production", "q": "web", "tag": ["team:edge", "tier:1"], "page": 2})
    html = response.content.decode()
    assert len(_names(html)) == 50 and all(int(n.split("-")[1]) < 1000 for n in _names(html))
    previous = _pager_links(html)["previous"]
    assert previous == {"environment": ["production"], "q": ["web"], "tag": ["team:edge", "tier:1"], "page": ["1"]}


def _push(token: str, hosts: list[str]) -> None:
    """CPU, memory and load of each host, three points five minutes apart (through the JSON door)."""
    now = time.time() - 30
    body = [{"host": host, "name": name, "value": 1.0 + i, "time": now - 300 * i}
            for host in hosts for name in ("cpu_usage_active", "mem_used_percent", "system_load1") for i in range(3)]
    response = post("/api/v1/metrics", json.dumps({"metrics": body}), token=token, content_type="application/json")
    assert response.status_code == 200, response.content


def _statements(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_query_count_does_not_grow_with_hosts_or_their_metrics(member_ro: Any, org: Any, write_token: str) -> None:
    client = _client(member_ro)
    url = reverse("hosts:list", args=[org.slug])
    _push(write_token, ["a-1", "a-2"])
    client.get(url)  # warm per-process caches
    few = _statements(client, url)
    _push(write_token, [f"b-{i}" for i in range(1, 121)])
    html = client.get(url).content.decode()
    assert html.count('class="key-metric"') == 3 * PAGE_SIZE
    assert "<polyline" in html
    assert _statements(client, url) == few


def test_host_links_are_the_detail_urls(member_ro: Any, org: Any) -> None:
    _fleet(org, 3)
    host = Host.objects.get(organization=org, name="web-2")
    expected = reverse("hosts:detail", args=[org.slug, host.public_id])
    assert host_detail_url(org.slug)(host.public_id) == expected
    html = _client(member_ro).get(reverse("hosts:list", args=[org.slug])).content.decode()
    assert f'<a href="{expected}">web-2</a>' in html


def test_the_host_page_query_count_does_not_grow_with_services_alerts_or_metrics(member_ro: Any, org: Any,
                                                                                 write_token: str) -> None:
    from apps.hosts.models import ServiceDependency
    from tests.alerts.factories import AlertFactory
    from tests.hosts.factories import ServiceFactory

    _push(write_token, ["web-1"])
    host = Host.objects.get(organization=org, name="web-1")
    client = _client(member_ro)
    url = reverse("hosts:detail", args=[org.slug, host.public_id])

    def grow(n: int) -> None:
        for i in range(n):
            service = ServiceFactory(organization=org, host=host)
            other = Host.objects.create(organization=org, name=f"db-{host.services.count()}-{i}")
            ServiceDependency.objects.create(organization=org, upstream_host=other, downstream_service=service)
            AlertFactory(organization=org, host=host, state="firing")

    grow(1)
    client.get(url)
    few = _statements(client, url)
    grow(6)
    _push(write_token, ["web-1", "web-2"])
    assert _statements(client, url) == few
