"""Delivery through real Celery worker processes (broker: the test Redis, database: the test database):
two workers racing for the same notifications never deliver one twice, retries are re-scheduled by the
worker itself, and a worker killed mid-send loses nothing (the sweep hands its claim to another worker)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from apps.alerts.choices import NotificationStatus
from apps.alerts.delivery import DELIVER_TASK, dispatch
from apps.alerts.models import DeliveryAttempt, Notification
from apps.alerts.tasks.delivery import SWEEP_TASK
from fiberstack.celery import app
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_delivery import HttpReceiver, NotificationFactory, receiver_fixture  # noqa: F401
from tests.celery_worker import CeleryWorker, worker_factory_fixture  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")]


def _all_done(ids: list[int]) -> Callable[[], bool]:
    return lambda: not Notification.objects.filter(pk__in=ids).exclude(
        status__in=[NotificationStatus.DELIVERED, NotificationStatus.FAILED]).exists()


def test_two_workers_racing_on_the_same_notifications_deliver_each_exactly_once(
        org: Any, receiver: HttpReceiver, worker_factory: Callable[..., CeleryWorker]) -> None:
    receiver.default_delay = 0.02  # a send takes a moment, so the two workers overlap
    channel = NotificationChannelFactory(organization=org, url=receiver.url, rate_limit_per_minute=0)
    ids = [n.pk for n in NotificationFactory.create_batch(40, organization=org, channel=channel)]
    first, second = worker_factory(name="alpha"), worker_factory(name="beta")
    first.wait_ready()
    second.wait_ready()

    # Every notification is handed out three times in a row, so the two workers pick up copies of the same
    # notification at the same moment; sweeps race the tasks too.
    for index, notification_id in enumerate(ids):
        for _ in range(3):
            app.send_task(DELIVER_TASK, args=[notification_id], queue=first.queue)
        if index % 10 == 0:
            app.send_task(SWEEP_TASK, queue=first.queue)
    first.wait_for(_all_done(ids))
    time.sleep(1)  # let stragglers (the duplicate tasks) run: they must find nothing to do

    keys = Counter(receiver.keys())
    assert len(keys) == 40 and set(keys.values()) == {1}
    assert set(Notification.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"delivered"}
    attempts = DeliveryAttempt.objects.filter(notification_id__in=ids)
    assert attempts.count() == 40 and all(a.ok and a.number == 1 for a in attempts)
    workers = {a.worker.split("@")[0] for a in attempts}
    assert workers == {"alpha", "beta"}, "both workers must have taken part for this to be a race"


def test_a_worker_retries_500s_on_its_own_queue_until_delivered(
        org: Any, receiver: HttpReceiver, worker_factory: Callable[..., CeleryWorker]) -> None:
    receiver.script = [500, 500, 200]
    notification = NotificationFactory(organization=org, channel=NotificationChannelFactory(
        organization=org, url=receiver.url))
    worker = worker_factory(env={"FIBERSTACK_NOTIFY_BACKOFF_BASE_SECONDS": "1"})

    app.send_task(DELIVER_TASK, args=[notification.pk], queue=worker.queue)
    worker.wait_for(_all_done([notification.pk]), timeout=60)

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.DELIVERED and notification.attempts == 3
    rows = list(notification.attempt_rows.order_by("number"))
    assert [(a.ok, a.response_status) for a in rows] == [(False, 500), (False, 500), (True, 200)]
    # Backoff 1 s then 2 s (minus jitter) between the tries.
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in pairwise(rows)]
    assert 0.85 <= gaps[0] < 1.9 and 1.75 <= gaps[1] < 3.5
    assert receiver.keys() == [str(notification.idempotency_key)] * 3


def test_a_worker_killed_mid_send_is_taken_over_by_the_sweep(
        org: Any, receiver: HttpReceiver, worker_factory: Callable[..., CeleryWorker]) -> None:
    receiver.hold = threading.Event()  # the first request hangs: the worker is mid-send when it dies
    notification = NotificationFactory(organization=org, channel=NotificationChannelFactory(
        organization=org, url=receiver.url))
    env = {"FIBERSTACK_NOTIFY_CLAIM_SECONDS": "3"}
    doomed = worker_factory(name="doomed", env=env)

    app.send_task(DELIVER_TASK, args=[notification.pk], queue=doomed.queue)
    receiver.wait_for(1)
    doomed.stop(kill=True)
    assert Notification.objects.get(pk=notification.pk).status == NotificationStatus.SENDING

    rescuer = worker_factory(name="rescuer", env=env)
    rescuer.wait_ready()

    def swept() -> bool:  # beat would send this every 10 s; here once a second
        app.send_task(SWEEP_TASK, queue=rescuer.queue)
        time.sleep(0.8)
        return Notification.objects.get(pk=notification.pk).status == NotificationStatus.DELIVERED

    rescuer.wait_for(swept, timeout=60)
    notification.refresh_from_db()
    assert notification.attempts == 2
    rows = list(notification.attempt_rows.order_by("number"))
    assert [(r.number, r.ok, r.error) for r in rows] == [(1, False, dispatch.ABANDONED), (2, True, "")]
    assert rows[0].worker.startswith("doomed@") and rows[1].worker.startswith("rescuer@")
    assert receiver.keys() == [str(notification.idempotency_key)] * 2  # the receiver can drop the repeat
