"""The overview's alerting, on-call and map panels: firing counts per severity linked to the filtered
alert list, who is on call now and next from the schedules, the newest alert events, the host map,
and a query count that does not grow with the number of alerts, schedules or hosts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.alerts.choices import AlertState
from apps.dashboards import overview_panels
from tests.alerts.factories import AlertFactory
from tests.alerts.factories_pages import AlertEventFactory
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory, ScheduleOverrideFactory
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _get(user: Any, org: Any) -> Any:
    response = _client(user).get(reverse("dashboards:overview", args=[org.slug]))
    assert response.status_code == 200
    return response


def test_firing_alerts_by_severity_link_to_the_filtered_list(member_ro: Any, org: Any, other_org: Any) -> None:
    for _ in range(3):
        AlertFactory(organization=org, severity="critical")
    AlertFactory(organization=org, severity="warning")
    AlertFactory(organization=org, severity="warning", state=AlertState.ACKNOWLEDGED)
    AlertFactory(organization=org, severity="critical", state=AlertState.RESOLVED)
    AlertFactory(organization=other_org, severity="critical")
    response = _get(member_ro, org)
    rows = {row["severity"]: (row["firing"], row["acknowledged"]) for row in response.context["alert_counts"]}
    assert rows == {"critical": (3, 0), "warning": (1, 1)}
    html = response.content.decode()
    assert '<a href="/acme/alerts/?state=firing&amp;severity=critical" data-firing="critical">3</a>' in html
    listed = _client(member_ro).get("/acme/alerts/?state=firing&severity=critical")
    assert len(listed.context["page"].object_list) == 3


def test_on_call_now_and_next_per_schedule(member_ro: Any, org: Any, owner: Any, editor: Any,
                                           admin_member: Any) -> None:
    now = timezone.now()
    daily = OnCallScheduleFactory(organization=org, name="primary", time_zone="UTC")
    # Daily handoff at 00:00 UTC: today's person is on now, tomorrow's takes over at midnight.
    ScheduleLayerFactory(schedule=daily, priority=0, start_date=now.date(), handoff_time=dt.time(0),
                         users=[owner, editor])
    covered = OnCallScheduleFactory(organization=org, name="secondary", time_zone="UTC")
    ScheduleLayerFactory(schedule=covered, start_date=now.date() - dt.timedelta(days=3), handoff_time=dt.time(0),
                         users=[editor])
    ScheduleOverrideFactory(schedule=covered, user=admin_member, start=now - dt.timedelta(hours=1),
                            end=now + dt.timedelta(hours=2))
    OnCallScheduleFactory(organization=org, name="empty", time_zone="UTC")
    rows = {row["schedule"].name: row for row in _get(member_ro, org).context["on_call"]}
    assert rows["primary"]["now"] == [owner.get_username()] and rows["primary"]["source"] == "layer 0"
    assert rows["primary"]["next"] == editor.get_username()
    assert rows["primary"]["next_at"] == dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0),
                                                             tzinfo=dt.UTC)
    assert rows["secondary"]["now"] == [admin_member.get_username()] and rows["secondary"]["source"] == "override"
    assert rows["secondary"]["next"] == editor.get_username()
    assert rows["empty"]["now"] == [] and rows["empty"]["next"] is None
    html = _get(member_ro, org).content.decode()
    assert re.search(r'<td data-now><strong>' + admin_member.get_username() + r'</strong> <span class="muted">'
                     r'\(override, until ', html)
    assert '<td data-now><span class="status-down">nobody</span></td>' in html


def test_recent_alert_events_newest_twenty_linked(member_ro: Any, org: Any, other_org: Any) -> None:
    alert = AlertFactory(organization=org, labels={"alertname": "disk_full", "host": "db-1"})
    now = timezone.now()
    for minutes in range(25):
        AlertEventFactory(alert=alert, time=now - dt.timedelta(minutes=minutes), message=f"event-{minutes}")
    AlertEventFactory(alert=AlertFactory(organization=other_org), message="foreign-event")
    response = _get(member_ro, org)
    events = response.context["alert_events"]
    assert [e.message for e in events] == [f"event-{m}" for m in range(20)]
    html = response.content.decode()
    assert f'href="/acme/alerts/{alert.public_id}/">disk_full</a>' in html
    assert "event-19" in html and "event-20" not in html and "foreign-event" not in html


def test_host_map_plots_hosts_with_coordinates_colored_by_status(member_ro: Any, org: Any, other_org: Any) -> None:
    now = timezone.now()
    up = HostFactory(organization=org, name="fra", latitude=50.1, longitude=8.7, last_seen_at=now)
    HostFactory(organization=org, name="nyc", latitude=40.7, longitude=-74.0, last_seen_at=now - dt.timedelta(days=1))
    HostFactory(organization=org, name="nowhere", latitude=None, longitude=None, last_seen_at=now)
    HostFactory(organization=other_org, name="foreign", latitude=1.0, longitude=1.0, last_seen_at=now)
    response = _get(member_ro, org)
    points = {p.label: p for p in response.context["map_points"]}
    assert set(points) == {"fra", "nyc"}
    assert (points["fra"].status, points["nyc"].status) == ("up", "down")
    assert (points["fra"].x, points["fra"].y) == (round(188.7 / 360 * 720, 1), round(39.9 / 180 * 360, 1))
    assert overview_panels.project(90, -180) == (0.0, 0.0) and overview_panels.project(-90, 180) == (720.0, 360.0)
    html = response.content.decode()
    assert 'id="host-map"' in html and '<circle class="down"' in html
    assert f'<a href="/acme/hosts/{up.public_id}/"><circle class="up"' in html
    assert "<script" not in html.split('id="host-map"')[1].split("</section>")[0]  # static SVG, no tiles
    assert "http" not in html.split('id="host-map"')[1].split("</section>")[0]


def test_no_map_without_coordinates(member_ro: Any, org: Any) -> None:
    HostFactory(organization=org, latitude=None, longitude=None)
    assert 'id="host-map"' not in _get(member_ro, org).content.decode()


def _count_queries(client: Client, org: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("dashboards:overview", args=[org.slug])).status_code == 200
    return len(queries)


def test_overview_query_count_does_not_grow_with_alerts_schedules_and_hosts(owner: Any, editor: Any,
                                                                             org: Any) -> None:
    client = _client(owner)
    now = timezone.now()

    def add(n: int) -> None:
        for i in range(n):
            schedule = OnCallScheduleFactory(organization=org, time_zone="Europe/Berlin")
            ScheduleLayerFactory(schedule=schedule, users=[owner, editor])
            ScheduleOverrideFactory(schedule=schedule, user=editor, start=now, end=now + dt.timedelta(hours=3))
            alert = AlertFactory(organization=org, severity="warning" if i % 2 else "critical")
            AlertEventFactory(alert=alert)
            HostFactory(organization=org, latitude=i, longitude=i, last_seen_at=now)

    add(1)
    client.get(reverse("dashboards:overview", args=[org.slug]))  # warm the cached ingest figures
    small = _count_queries(client, org)
    add(8)
    large = _count_queries(client, org)
    assert large == small
    assert len(_get(owner, org).context["on_call"]) == 9


def test_a_shift_past_the_lookahead_has_no_until(member_ro: Any, org: Any, owner: Any) -> None:
    schedule = OnCallScheduleFactory(organization=org, name="solo", time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, start_date=timezone.now().date(), handoff_time=dt.time(0),
                         users=[owner])
    (row,) = _get(member_ro, org).context["on_call"]
    assert row["now"] == [owner.get_username()] and row["until"] is None and row["next"] is None


def test_map_labels_are_escaped_and_points_link_to_their_hosts(member_ro: Any, org: Any) -> None:
    host = HostFactory(organization=org, name="web-1", display_name='<b>"x"</b>', latitude=52.5, longitude=13.4,
                       last_seen_at=timezone.now())
    html = _get(member_ro, org).content.decode()
    assert "<title>&lt;b&gt;&quot;x&quot;&lt;/b&gt; (up)</title>" in html
    assert '<b>"x"</b>' not in html
    assert f'<a href="{reverse("hosts:detail", args=[org.slug, host.public_id])}"><circle class="up"' in html
