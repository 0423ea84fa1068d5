"""The after-commit ingest seam (apps.metrics.hooks), through the HTTP doors: one immutable IngestBatch
per committed request, handed to the consumers FIBERSTACK_INGEST_CONSUMERS names, only after commit,
never for a rolled-back request, and a consumer that raises changes neither the reply nor the others."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from django.test import override_settings

from apps.hosts.models import Host
from apps.metrics import hooks, hot
from apps.metrics.models import Series
from tests.metrics.factories import post, sample_count

pytestmark = pytest.mark.django_db

NOW = int(time.time()) - 30
SEEN: list[hooks.IngestBatch] = []
DEFAULT_CONSUMERS = ["apps.metrics.hot.consume", "apps.hosts.seen.consume"]
RECORDING = "tests.metrics.test_ingest_hooks.record"
FAILING = "tests.metrics.test_ingest_hooks.explode"


def record(batch: hooks.IngestBatch) -> None:
    SEEN.append(batch)


def explode(batch: hooks.IngestBatch) -> None:
    raise RuntimeError("consumer bug")


@pytest.fixture(autouse=True)
def _seen() -> Any:
    SEEN.clear()
    yield
    SEEN.clear()


def push(token: str, rows: list[dict[str, Any]]) -> Any:
    return post("/api/v1/metrics", json.dumps(rows), token=token, content_type="application/json")


@override_settings(FIBERSTACK_INGEST_CONSUMERS=[*DEFAULT_CONSUMERS, RECORDING])
def test_consumers_get_one_batch_after_commit(org: Any, write_token: str,
                                              django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = push(write_token, [{"host": "h1", "name": "t", "value": 1, "time": NOW - 10},
                                      {"host": "h1", "name": "t", "value": 2, "time": NOW},
                                      {"host": "h2", "name": "u", "value": 3, "time": NOW}])
        assert response.status_code == 200, response.content
    assert SEEN == []  # nothing before the commit
    for callback in callbacks:
        callback()
    [batch] = SEEN
    t, u = Series.objects.get(organization=org, name="t"), Series.objects.get(organization=org, name="u")
    h1, h2 = Host.objects.get(organization=org, name="h1"), Host.objects.get(organization=org, name="h2")
    assert batch.organization_id == org.pk
    assert dict(batch.latest) == {t.id: (NOW * 1_000_000, 2.0), u.id: (NOW * 1_000_000, 3.0)}
    assert dict(batch.host_of_series) == {t.id: h1.id, u.id: h2.id}
    assert batch.hosts_seen == {h1.id, h2.id}
    assert abs(batch.received_at.timestamp() - time.time()) < 60
    # The other consumers ran from the same batch.
    assert hot.latest_values(org.pk, [t.id])[t.id] == (float(NOW), 2.0)
    assert Host.objects.filter(organization=org, last_seen_at=batch.received_at).count() == 2


def test_the_batch_is_immutable(org: Any) -> None:
    batch = hooks.IngestBatch.build(organization_id=org.pk, received_at=org.created_at, latest={1: (0, 1.0)},
                                    host_of_series={1: None}, hosts_seen=frozenset())
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.organization_id = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        batch.latest[2] = (0, 0.0)  # type: ignore[index]


@override_settings(FIBERSTACK_INGEST_CONSUMERS=[FAILING, *DEFAULT_CONSUMERS, RECORDING])
def test_a_failing_consumer_is_logged_and_changes_nothing_else(org: Any, write_token: str, caplog: Any,
                                                               django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = push(write_token, [{"host": "h1", "name": "t", "value": 5, "time": NOW}])
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert sample_count(org) == 1
    assert "ingest consumer tests.metrics.test_ingest_hooks.explode failed" in caplog.text
    assert "consumer bug" in caplog.text
    series = Series.objects.get(organization=org, name="t")
    assert hot.latest_values(org.pk, [series.id])[series.id] == (float(NOW), 5.0)
    assert Host.objects.get(organization=org, name="h1").last_seen_at is not None
    assert len(SEEN) == 1


@override_settings(FIBERSTACK_INGEST_CONSUMERS=[RECORDING])
def test_a_rolled_back_request_reaches_no_consumer(org: Any, write_token: str,
                                                   django_capture_on_commit_callbacks: Any) -> None:
    org.auto_register_hosts = False
    org.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = push(write_token, [{"host": "stranger", "name": "t", "value": 1}])
    assert response.status_code == 422
    assert SEEN == []


@override_settings(FIBERSTACK_INGEST_CONSUMERS=[RECORDING])
def test_consumers_come_from_the_setting_alone(org: Any, write_token: str,
                                               django_capture_on_commit_callbacks: Any) -> None:
    """Without the hot-tier and hosts consumers listed, ingest stores samples and touches neither."""
    with django_capture_on_commit_callbacks(execute=True):
        push(write_token, [{"host": "h9", "name": "t", "value": 1, "time": NOW}])
    series = Series.objects.get(organization=org, name="t")
    assert sample_count(org) == 1 and len(SEEN) == 1
    assert hot.latest_values(org.pk, [series.id]) == {}
    assert Host.objects.get(organization=org, name="h9").last_seen_at is None


def test_the_system_check_names_a_consumer_that_does_not_import(settings: Any) -> None:
    assert hooks.check_consumers() == []
    settings.FIBERSTACK_INGEST_CONSUMERS = [*DEFAULT_CONSUMERS, "apps.metrics.hot.no_such_consumer"]
    [error] = hooks.check_consumers()
    assert error.id == "metrics.E001" and "no_such_consumer" in error.msg
