"""The hosts' ingest consumer (apps.hosts.seen): last_seen and the live "hosts.update" event, each
throttled per host, both claims in one Redis script call."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache

from apps.hosts import seen, services
from apps.hosts.models import Host

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Batch:
    organization_id: int
    received_at: datetime.datetime
    hosts_seen: frozenset[int]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict[str, Any]]]:
    sent: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(services, "broadcast_hosts_update", lambda org_id, payload: sent.append((org_id, payload)))
    return sent


def test_consume_marks_hosts_seen_and_broadcasts_once_per_interval(org: Any, events: list) -> None:
    a, b = Host.objects.create(organization=org, name="a"), Host.objects.create(organization=org, name="b")
    seen.consume(Batch(org.pk, T0, frozenset({a.pk, b.pk})))
    assert Host.objects.filter(organization=org, last_seen_at=T0).count() == 2
    [(org_id, payload)] = events
    assert org_id == org.pk
    assert sorted(h["name"] for h in payload["hosts"]) == ["a", "b"]
    assert {h["last_seen_at"] for h in payload["hosts"]} == {T0.isoformat()}
    # Within both windows: no second event, no write.
    seen.consume(Batch(org.pk, T0 + datetime.timedelta(seconds=1), frozenset({a.pk, b.pk})))
    assert len(events) == 1
    assert Host.objects.filter(organization=org, last_seen_at=T0).count() == 2
    # The live window reopens before the last_seen one: an event, still no write.
    cache.delete(services.live_key(a.pk))
    seen.consume(Batch(org.pk, T0 + datetime.timedelta(seconds=2), frozenset({a.pk, b.pk})))
    assert [h["name"] for h in events[1][1]["hosts"]] == ["a"]
    assert Host.objects.filter(organization=org, last_seen_at=T0).count() == 2


def test_consume_ignores_other_organizations_hosts(org: Any, other_org: Any, events: list) -> None:
    theirs = Host.objects.create(organization=other_org, name="theirs")
    seen.consume(Batch(org.pk, T0, frozenset({theirs.pk})))
    assert Host.objects.get(pk=theirs.pk).last_seen_at is None
    assert events == []


def test_consume_without_hosts_does_nothing(org: Any, events: list, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        seen.consume(Batch(org.pk, T0, frozenset()))
    assert events == []
