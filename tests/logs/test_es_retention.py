"""The ILM-equivalent retention of the Elasticsearch copies (apps/logs/es_retention.py, beat task
``logs.expire_es_indices``), against the stand-in Elasticsearch of tests/logs/fake_es.py: whole daily indices
past the longest retention are deleted one by one, organizations keeping fewer days get a
``_delete_by_query``, and indices of other names or still within retention are left alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.logs import es
from apps.logs.models import LogRetention
from apps.logs.tasks import expire_es_indices
from tests.logs.fake_es import FakeElasticsearch, fake_es_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _day(days_ago: int) -> str:
    return f"{timezone.now() - dt.timedelta(days=days_ago):%Y.%m.%d}"


def test_indices_past_retention_are_deleted(org: Any, fake_es: FakeElasticsearch) -> None:
    fake_es.indices = [f"fiber-logs-{_day(40)}", f"fiber-logs-{_day(31)}", f"fiber-logs-{_day(29)}",
                       f"fiber-logs-{_day(0)}", "fiber-logs-archive", f"fiber-events-{_day(91)}",
                       f"fiber-events-{_day(40)}", f"fiber-alerts-{_day(100)}"]
    summary = expire_es_indices.delay().get()
    deleted = [path for method, path in fake_es.calls("DELETE")]
    # Logs keep 30 days, events and alerts 90 (the organization's event retention).
    assert sorted(deleted) == sorted([f"/fiber-logs-{_day(40)}", f"/fiber-logs-{_day(31)}",
                                      f"/fiber-events-{_day(91)}", f"/fiber-alerts-{_day(100)}"])
    assert [path for _, path in fake_es.calls("GET")] == ["/fiber-logs-*", "/fiber-events-*", "/fiber-alerts-*"]
    assert not fake_es.find("POST", "/_delete_by_query")  # one organization: nobody keeps fewer days
    assert "logs: keep 30 d, deleted 2 indices" in summary


def test_a_shorter_organization_retention_is_trimmed_by_query(org: Any, other_org: Any,
                                                                fake_es: FakeElasticsearch) -> None:
    LogRetention.objects.create(organization=org, logs_days=7, events_days=30)
    now = timezone.now()
    expire_es_indices.delay().get()
    trims = fake_es.find("POST", "/_delete_by_query")
    assert [r.path for r in trims] == ["/fiber-logs-*/_delete_by_query", "/fiber-events-*/_delete_by_query",
                                       "/fiber-alerts-*/_delete_by_query"]
    logs_trim = trims[0]
    assert logs_trim.query["wait_for_completion"] == ["false"] and logs_trim.query["conflicts"] == ["proceed"]
    organization, time_range = logs_trim.json()["query"]["bool"]["filter"]
    assert organization == {"terms": {"organization_id": [org.pk]}}  # other_org keeps the default
    cutoff = time_range["range"]["time_us"]["lt"]
    assert abs(cutoff - es.micros(now - dt.timedelta(days=7))) < 60_000_000


def test_an_override_beyond_the_plan_keeps_only_the_plan(org: Any, fake_es: FakeElasticsearch) -> None:
    LogRetention.objects.create(organization=org, logs_days=365)  # free plan: at most 30 days
    fake_es.indices = [f"fiber-logs-{_day(31)}"]
    expire_es_indices.delay().get()
    assert fake_es.calls("DELETE") == [("DELETE", f"/fiber-logs-{_day(31)}")]


def test_without_elasticsearch_the_task_does_nothing(settings: Any) -> None:
    settings.ELASTICSEARCH_URL = ""
    assert expire_es_indices.delay().get() == "skipped: ELASTICSEARCH_URL is not set"
