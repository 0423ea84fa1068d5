"""Series resolver: batching, caches filled only after commit, concurrency, host label rules."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction

from apps.metrics import series as resolver
from apps.metrics.models import Series
from apps.metrics.services import host_name_of, strip_port
from tests.organizations.factories import OrganizationFactory


def keys(n: int, name: str = "m") -> list[Any]:
    return [(name, (("host", f"h{i}"), ("job", "x"))) for i in range(n)]


@pytest.fixture(autouse=True)
def _fresh_local_cache() -> None:
    resolver.forget_local_cache()


@pytest.mark.django_db
def test_all_misses_of_a_request_cost_one_insert(django_assert_max_num_queries: Any) -> None:
    org = OrganizationFactory()
    with django_assert_max_num_queries(1):
        ids, created = resolver.resolve_series(org.pk, keys(200), host_of=lambda key: None)
    assert created == 200
    assert len(set(ids.values())) == 200
    stored = Series.objects.get(id=ids[keys(1)[0]])
    assert (stored.name, stored.labels) == ("m", {"host": "h0", "job": "x"})


@pytest.mark.django_db
def test_existing_series_are_found_with_one_more_select(django_assert_num_queries: Any) -> None:
    org = OrganizationFactory()
    first, _ = resolver.resolve_series(org.pk, keys(10), host_of=lambda key: None)
    resolver.forget_local_cache()  # on_commit never ran inside the test transaction anyway
    with django_assert_num_queries(2):  # INSERT (nothing new) + SELECT
        again, created = resolver.resolve_series(org.pk, keys(12), host_of=lambda key: None)
    assert created == 2
    assert all(again[key] == first[key] for key in keys(10))


@pytest.mark.django_db
def test_caches_fill_on_commit_and_then_no_query(django_capture_on_commit_callbacks: Any,
                                                  django_assert_num_queries: Any) -> None:
    org = OrganizationFactory()
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = resolver.resolve_series(org.pk, keys(5), host_of=lambda key: None)
    with django_assert_num_queries(0):  # in-process dict
        assert resolver.resolve_series(org.pk, keys(5), host_of=lambda key: None)[0] == first
    resolver.forget_local_cache()
    with django_assert_num_queries(0):  # Redis hash
        assert resolver.resolve_series(org.pk, keys(5), host_of=lambda key: None)[0] == first


@pytest.mark.django_db
def test_rolled_back_ids_are_never_cached() -> None:
    org = OrganizationFactory()
    with transaction.atomic():
        sid = transaction.savepoint()
        ids, _ = resolver.resolve_series(org.pk, keys(1, "ghost"), host_of=lambda key: None)
        transaction.savepoint_rollback(sid)
    assert (org.pk, keys(1, "ghost")[0]) not in resolver._local
    assert not Series.objects.filter(id__in=ids.values()).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_creating_the_same_series_agree() -> None:
    org = OrganizationFactory()
    wanted = keys(300, "race")
    results: list[dict[Any, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                # Reversed halves: overlapping sets in different orders must not deadlock.
                ids, _ = resolver.resolve_series(org.pk, list(reversed(wanted)) if index % 2 else wanted,
                                                 host_of=lambda key: None)
            results.append(ids)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 4
    assert all(result == results[0] for result in results)
    assert Series.objects.filter(organization=org).count() == 300
    connection.close()


@pytest.mark.parametrize(
    ("value", "host"),
    [("10.0.0.1:9100", "10.0.0.1"), ("[::1]:9100", "::1"), ("web-1", "web-1"), ("::1", "::1"),
     ("node.example.com:443", "node.example.com"), ("fe80::1", "fe80::1")],
)
def test_strip_port(value: str, host: str) -> None:
    assert strip_port(value) == host


def test_host_label_precedence(settings: Any) -> None:
    assert host_name_of((("hostname", "b"), ("instance", "c:1"))) == "b"
    assert host_name_of((("host", "a"), ("hostname", "b"))) == "a"
    assert host_name_of((("instance", "c:9100"),)) == "c"
    assert host_name_of((("job", "x"),)) is None
    settings.FIBERSTACK_HOST_LABELS = ["instance"]
    assert host_name_of((("host", "a"), ("instance", "c:1"))) == "c"
