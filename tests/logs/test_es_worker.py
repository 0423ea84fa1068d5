"""The Elasticsearch copies through a real Celery worker process (broker: the test Redis) and the stand-in
Elasticsearch of tests/logs/fake_es.py: a committed ingest queues ``logs.index_rows`` (not eager), the worker
PUTs the template and the bulk body; with Elasticsearch failing, the door still answers at once and the
worker retries until it comes back."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client

from fiberstack.celery import app
from tests.celery_worker import CeleryWorker, worker_factory_fixture, worker_fixture  # noqa: F401 (fixtures)
from tests.logs.conftest import post_logs
from tests.logs.fake_es import FakeElasticsearch, fake_es_fixture  # noqa: F401 (fixture)

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(settings: Any, monkeypatch: pytest.MonkeyPatch, worker_factory: Any, fake_es: FakeElasticsearch) -> Any:
    """A worker on a private queue that sees the fake; this process publishes instead of running eagerly."""
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    worker = worker_factory(env={"ELASTICSEARCH_URL": fake_es.url})
    settings.FIBERSTACK_LOGS_ES_QUEUE = worker.queue
    worker.wait_ready()
    return worker


def test_a_worker_copies_committed_entries(client: Client, write_token: str, fake_es: FakeElasticsearch,
                                           queued: CeleryWorker) -> None:
    response = post_logs(client, write_token, [{"message": f"line {n}"} for n in range(3)])
    assert response.status_code == 200
    queued.wait_for(lambda: any(path == "/_bulk" for _, path in fake_es.calls()))
    assert fake_es.calls()[0] == ("PUT", "/_index_template/fiber-logs")
    bulk = next(r for r in fake_es.requests if r.path == "/_bulk")
    assert {doc["message"] for doc in bulk.ndjson()[1::2]} == {"line 0", "line 1", "line 2"}


def test_an_outage_neither_fails_nor_slows_the_write(client: Client, write_token: str,
                                                     fake_es: FakeElasticsearch, queued: CeleryWorker) -> None:
    fake_es.fail = True
    started = time.monotonic()
    response = post_logs(client, write_token, [{"message": "during the outage"}])
    assert response.status_code == 200 and time.monotonic() - started < 2
    # The worker tried, got 503s (the client's own retry included) and scheduled a Celery retry.
    queued.wait_for(lambda: "Retry in" in queued.log(100_000))
    fake_es.fail = False
    queued.wait_for(lambda: any(r.path == "/_bulk" and b"during the outage" in r.body for r in fake_es.requests),
                    timeout=60)
