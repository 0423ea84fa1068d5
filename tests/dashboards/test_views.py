"""The overview page at /<org>/ and its live status JSON: roles, other organizations, sign-in, and numbers
that match the data behind them (hosts by last_seen, samples pushed through the real HTTP door)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import record_event
from apps.core.roles import Role
from apps.dashboards import overview
from apps.hosts.models import Host
from apps.metrics.rollups import jobs
from tests.hosts.factories import HostFactory
from tests.metrics.factories import post
from tests.organizations.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PAGES = ["dashboards:overview", "dashboards:overview-status"]


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(org: Any, name: str = "dashboards:overview") -> str:
    return reverse(name, args=[org.slug])


@pytest.fixture
def fleet(org: Any, other_org: Any) -> dict[str, Host]:
    """Two up hosts, three down ones silent for different times, one never seen; noise in other_org."""
    now = timezone.now()
    made = {
        "up-1": HostFactory(organization=org, name="up-1", last_seen_at=now - dt.timedelta(seconds=10)),
        "up-2": HostFactory(organization=org, name="up-2", environment="staging", datacenter="ams1",
                            last_seen_at=now - dt.timedelta(seconds=100)),
        "down-recent": HostFactory(organization=org, name="down-recent", last_seen_at=now - dt.timedelta(minutes=10)),
        "down-old": HostFactory(organization=org, name="down-old", last_seen_at=now - dt.timedelta(days=3)),
        "down-mid": HostFactory(organization=org, name="down-mid", environment="staging", datacenter="ams1",
                                last_seen_at=now - dt.timedelta(hours=2)),
        "never": HostFactory(organization=org, name="never", last_seen_at=None),
    }
    HostFactory(organization=other_org, name="elsewhere", last_seen_at=now - dt.timedelta(days=1))
    return made


def test_overview_is_the_org_landing_page(owner: Any, org: Any) -> None:
    assert _url(org) == "/acme/"
    assert _client(owner).get("/")["Location"] == "/acme/"


@pytest.mark.parametrize(("role", "sees_audit"), [
    (Role.OWNER, True), (Role.ADMIN, True), (Role.EDITOR, False), (Role.VIEWER, False),
])
def test_overview_role_matrix(user_with_role: Any, org: Any, role: str, sees_audit: bool) -> None:
    record_event(organization=org, actor=None, action="host.created", object_repr="secret-host-audit")
    response = _client(user_with_role(role)).get(_url(org))
    assert response.status_code == 200
    html = response.content.decode()
    assert ('id="audit"' in html) is sees_audit
    assert ("secret-host-audit" in html) is sees_audit
    assert (response.context["audit_events"] is not None) is sees_audit


@pytest.mark.parametrize("name", PAGES)
def test_overview_other_org_gets_404(other_org_user: Any, org: Any, name: str) -> None:
    assert _client(other_org_user).get(_url(org, name)).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_unknown_org_gets_the_same_404(owner: Any, name: str) -> None:
    assert _client(owner).get(reverse(name, args=["no-such-org"])).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_users_are_sent_to_login(client: Client, org: Any, name: str) -> None:
    response = client.get(_url(org, name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert "next=" in response["Location"]


def test_status_counts_and_down_list_match_the_hosts(member_ro: Any, org: Any, fleet: dict[str, Host]) -> None:
    response = _client(member_ro).get(_url(org))
    assert response.context["counts"] == {"total": 6, "up": 2, "down": 3, "unknown": 1}
    html = response.content.decode()
    assert '<span class="value" data-count="down">3</span>' in html
    assert '<span class="value" data-count="up">2</span>' in html
    assert '<span class="value" data-count="unknown">1</span>' in html
    down = [host["label"] for host in response.context["down_hosts"]]
    assert down == ["down-old", "down-mid", "down-recent"]  # longest silent first
    assert html.index("down-old") < html.index("down-mid") < html.index("down-recent")
    assert "elsewhere" not in html
    assert response.context["down_hosts"][0]["silent_for"] == "3 d"
    detail = reverse("hosts:detail", args=[org.slug, fleet["down-old"].public_id])
    assert response.context["down_hosts"][0]["url"] == detail


def test_hosts_by_environment_and_datacenter(member_ro: Any, org: Any, fleet: dict[str, Host]) -> None:
    rows = _client(member_ro).get(_url(org)).context["locations"]
    by_key = {(r["environment"], r["datacenter"]): (r["total"], r["up"], r["down"], r["unknown"]) for r in rows}
    assert by_key == {("production", "fra1"): (4, 1, 2, 1), ("staging", "ams1"): (2, 1, 1, 0)}
    assert rows[0]["environment"] == "production"  # most down hosts first


def test_status_json_follows_a_host_that_comes_back(member_ro: Any, org: Any, fleet: dict[str, Host]) -> None:
    client = _client(member_ro)
    body = client.get(_url(org, "dashboards:overview-status")).json()
    assert body["counts"] == {"total": 6, "up": 2, "down": 3, "unknown": 1}
    assert [h["label"] for h in body["down"]] == ["down-old", "down-mid", "down-recent"]
    Host.objects.filter(pk=fleet["down-old"].pk).update(last_seen_at=timezone.now())
    body = client.get(_url(org, "dashboards:overview-status")).json()
    assert body["counts"] == {"total": 6, "up": 3, "down": 2, "unknown": 1}
    assert [h["label"] for h in body["down"]] == ["down-mid", "down-recent"]


def test_page_wires_the_hosts_websocket_and_status_url(member_ro: Any, org: Any) -> None:
    html = _client(member_ro).get(_url(org)).content.decode()
    assert 'data-ws-path="/ws/acme/hosts/"' in html
    assert 'data-status-url="/acme/overview/status.json"' in html
    assert "js/overview_live.js" in html


def _push(token: str, host: str, names: list[str], seconds_ago: list[int]) -> None:
    now = time.time()
    body = [{"host": host, "name": name, "value": float(i), "time": now - ago}
            for name in names for i, ago in enumerate(seconds_ago)]
    response = post("/api/v1/metrics", json.dumps({"metrics": body}), token=token, content_type="application/json")
    assert response.status_code == 200, response.content


def test_ingest_activity_counts_series_and_samples_of_the_last_hour(
    member_ro: Any, org: Any, write_token: str, make_token: Any, other_org: Any,
) -> None:
    _push(write_token, "web-1", ["cpu_usage_active", "mem_used_percent"], [30, 90, 600, 1800])
    _push(write_token, "web-2", ["cpu_usage_active"], [40, 7200])  # the 2 h old sample is outside the window
    _, foreign = make_token(organization=other_org)
    _push(foreign, "x-1", ["cpu_usage_active"], [30, 60, 90])
    response = _client(member_ro).get(_url(org))
    ingest = response.context["ingest"]
    assert (ingest.series, ingest.samples) == (3, 9)
    assert sum(v for _, v in response.context["ingest_points"]) == pytest.approx(9 / 60, abs=0.01)
    assert 'data-stat="samples">9<' in response.content.decode()


def test_ingest_activity_reads_rolled_up_minutes_and_the_raw_tail_without_double_counting(
    org: Any, write_token: str,
) -> None:
    _push(write_token, "web-1", ["cpu_usage_active"], [5, 20, 300, 900, 1500, 2400])
    before = overview._ingest_activity(org, timezone.now())
    jobs.run_rollups()
    after = overview._ingest_activity(org, timezone.now())
    assert before.samples == after.samples == 6
    assert after.per_minute == before.per_minute


def test_rollup_lag_per_tier(member_ro: Any, org: Any) -> None:
    client = _client(member_ro)
    rows = client.get(_url(org)).context["rollup_lag"]
    assert [(r["tier"], r["seconds"]) for r in rows] == [("1m", None), ("5m", None), ("1h", None), ("1d", None)]
    assert "not run yet" in client.get(_url(org)).content.decode()
    jobs.run_rollups()
    rows = {r["tier"]: r for r in client.get(_url(org)).context["rollup_lag"]}
    assert rows["1m"]["seconds"] is not None and rows["1m"]["seconds"] < 3600
    assert rows["1m"]["lagging"] is False


def test_fleet_chart_queries_the_metrics_api_for_the_default_metric(member_ro: Any, org: Any, write_token: str) -> None:
    _push(write_token, "web-1", ["system_load1", "cpu_usage_active"], [30])
    response = _client(member_ro).get(_url(org))
    assert response.context["fleet_metric"] == "cpu_usage_active"
    assert 'data-query="org=acme&amp;name=cpu_usage_active"' in response.content.decode()
    assert 'data-api="/api/v1/metrics"' in response.content.decode()


def test_user_in_several_orgs_sees_only_this_orgs_numbers(owner: Any, org: Any, other_org: Any,
                                                          fleet: dict[str, Host]) -> None:
    MembershipFactory(organization=other_org, user=owner, role=Role.VIEWER)
    assert _client(owner).get(_url(org)).context["counts"]["total"] == 6
    assert _client(owner).get(_url(other_org)).context["counts"]["total"] == 1


def _stuck(minutes: int) -> None:
    from apps.metrics.rollups.models import RollupState

    jobs.run_rollups()
    RollupState.objects.filter(tier="1m").update(watermark=timezone.now() - dt.timedelta(minutes=minutes),
                                                 dirty_from=None)


def test_a_tier_stuck_for_45_minutes_is_a_visible_warning(member_ro: Any, org: Any) -> None:
    _stuck(45)
    response = _client(member_ro).get(_url(org))
    html = response.content.decode()
    assert 'role="alert" id="rollups-behind"' in html
    assert "the 1m tier is 45 min behind (warning after 12 min)" in html
    assert '<tr data-tier="1m" class="lagging">' in html and "⚠ stuck" in html
    assert '<tr data-tier="5m">' in html  # the others keep up


def test_rollup_lag_threshold_is_configurable(member_ro: Any, org: Any, settings: Any) -> None:
    settings.FIBERSTACK_ROLLUP_LAG_WARN_SECONDS = {"1m": 3600}
    _stuck(45)
    html = _client(member_ro).get(_url(org)).content.decode()
    assert "rollups-behind" not in html and "⚠" not in html
    settings.FIBERSTACK_ROLLUP_LAG_WARN_SECONDS = {"1m": 1800}
    assert "the 1m tier is 45 min behind (warning after 30 min)" in _client(member_ro).get(_url(org)).content.decode()


def test_overview_renders_from_postgresql_with_redis_unreachable(member_ro: Any, org: Any,
                                                                 fleet: dict[str, Host]) -> None:
    from django.test import override_settings

    from fiberstack.settings.base import CACHES

    with override_settings(CACHES={"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}):
        started = time.monotonic()
        response = _client(member_ro).get(_url(org))
        assert time.monotonic() - started < 3.0
    assert response.status_code == 200
    assert response.context["counts"]["down"] == 3
