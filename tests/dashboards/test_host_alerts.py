"""The host page's alerts panel (`{% host_alerts %}`, injected by the dashboards floor so that hosts never
imports alerts): the host's open alerts, most urgent first, linked; never another host's or organization's."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.alerts.choices import AlertState
from tests.alerts.factories import AlertFactory
from tests.hosts.factories import HostFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def _detail(user: Any, org: Any, host: Any) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/{org.slug}/hosts/{host.public_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_host_page_lists_the_hosts_open_alerts(member_ro: Any, org: Any, other_org: Any) -> None:
    host = HostFactory(organization=org, name="db-1", last_seen_at=timezone.now())
    other = HostFactory(organization=org, name="db-2")
    acked = AlertFactory(organization=org, host=host, labels={"alertname": "disk_acked"},
                         state=AlertState.ACKNOWLEDGED)
    warning = AlertFactory(organization=org, host=host, labels={"alertname": "load_warning"}, severity="warning")
    critical = AlertFactory(organization=org, host=host, labels={"alertname": "cpu_critical"})
    AlertFactory(organization=org, host=host, labels={"alertname": "old_resolved"}, state=AlertState.RESOLVED)
    AlertFactory(organization=org, host=other, labels={"alertname": "other_host"})
    ServiceFactory(organization=org, host=host, name="postgres")
    html = _detail(member_ro, org, host)
    panel = html.split('id="host-alerts"')[1].split("</section>")[0]
    assert panel.index("cpu_critical") < panel.index("load_warning") < panel.index("disk_acked")
    assert f'href="/acme/alerts/{critical.public_id}/"' in panel
    assert f'data-alert="{warning.public_id}"' in panel and f'data-alert="{acked.public_id}"' in panel
    assert "old_resolved" not in panel and "other_host" not in panel
    assert "?state=open&amp;host=db-1" in panel
    assert "postgres" in html  # services stay on the page


def test_host_without_alerts_says_so(member_ro: Any, org: Any) -> None:
    host = HostFactory(organization=org)
    assert "No open alerts for this host." in _detail(member_ro, org, host)
