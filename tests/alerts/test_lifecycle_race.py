"""Two workers at once, each on its own PostgreSQL connection: the same evaluation applied twice
concurrently makes one transition, one timeline entry and one notification per channel -- with the rule
lock, and also without it (the compare-and-set on the old state and the unique (rule, fingerprint) alone
must hold). Two people acknowledging at once: one wins, the other is told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from apps.alerts import delivery
from apps.alerts.models import Alert, AlertEvent, Notification
from apps.alerts.services import lifecycle
from apps.alerts.services.lifecycle import AlertStateError, acknowledge_alert, record_outcomes
from tests.alerts.factories_lifecycle import at, breach, clear, rule_with_channels

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: Any) -> None:
    monkeypatch.setattr(delivery, "_send", lambda ids: None)


def race(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads released together; each result or exception is returned in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = job()
        except Exception as exc:  # returned to the test, which asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("rule_lock", [True, False], ids=["with-rule-lock", "compare-and-set-only"])
def test_two_workers_evaluating_one_rule_fire_and_notify_once(org, monkeypatch, rule_lock):
    if not rule_lock:
        monkeypatch.setattr(lifecycle, "_lock_rule", lambda rule_id: None)
    rule = rule_with_channels(org, channels=2)
    outcomes = [breach(host=f"h{i}") for i in range(20)]
    for _round in range(3):
        results = race(*[lambda: record_outcomes(rule=rule, outcomes=outcomes, at=at(0), complete=True)] * 2)
        assert not [r for r in results if isinstance(r, Exception)], results
    assert Alert.objects.filter(rule=rule, state="firing").count() == 20
    assert AlertEvent.objects.filter(alert__rule=rule, to_state="firing").count() == 20
    assert Notification.objects.filter(group__rule=rule).count() == 2

    results = race(*[lambda: record_outcomes(rule=rule, outcomes=[clear(host=f"h{i}") for i in range(20)],
                                             at=at(10), complete=True)] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert AlertEvent.objects.filter(alert__rule=rule, to_state="resolved").count() == 20
    assert list(Notification.objects.filter(group__rule=rule).values_list("kind", flat=True).order_by("kind")) == [
        "firing", "firing", "resolved", "resolved"]


def test_two_people_acknowledging_at_once_make_one_acknowledgement(org, owner, editor):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    first, second = Alert.objects.get(rule=rule), Alert.objects.get(rule=rule)
    results = race(lambda: acknowledge_alert(alert=first, actor=owner),
                   lambda: acknowledge_alert(alert=second, actor=editor))
    errors = [r for r in results if isinstance(r, AlertStateError)]
    assert len(errors) == 1 and errors[0].state == "acknowledged"
    assert AlertEvent.objects.filter(alert__rule=rule, to_state="acknowledged").count() == 1
