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


@pytest.fixture
def warm_epoch(db: Any) -> None:
    """Read the database's cache epoch before counting queries (a process reads it once a minute)."""
    from apps.hosts import cache_scope

    cache_scope.epoch()


@pytest.mark.django_db
def test_all_misses_of_a_request_cost_one_insert(warm_epoch: None, django_assert_max_num_queries: Any) -> None:
    org = OrganizationFactory()
    with django_assert_max_num_queries(1):
        ids, created = resolver.resolve_series(org, keys(200), host_of=lambda key: None)
    assert created == 200
    assert len(set(ids.values())) == 200
    stored = Series.objects.get(id=ids[keys(1)[0]])
    assert (stored.name, stored.labels) == ("m", {"host": "h0", "job": "x"})


@pytest.mark.django_db
def test_existing_series_are_found_with_one_more_select(warm_epoch: None, django_assert_num_queries: Any) -> None:
    org = OrganizationFactory()
    first, _ = resolver.resolve_series(org, keys(10), host_of=lambda key: None)
    resolver.forget_local_cache()  # on_commit never ran inside the test transaction anyway
    with django_assert_num_queries(2):  # INSERT (nothing new) + SELECT
        again, created = resolver.resolve_series(org, keys(12), host_of=lambda key: None)
    assert created == 2
    assert all(again[key] == first[key] for key in keys(10))


@pytest.mark.django_db
def test_caches_fill_on_commit_and_then_no_query(warm_epoch: None, django_capture_on_commit_callbacks: Any,
                                                  django_assert_num_queries: Any) -> None:
    org = OrganizationFactory()
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = resolver.resolve_series(org, keys(5), host_of=lambda key: None)
    with django_assert_num_queries(0):  # in-process dict
        assert resolver.resolve_series(org, keys(5), host_of=lambda key: None)[0] == first
    resolver.forget_local_cache()
    with django_assert_num_queries(0):  # Redis hash
        assert resolver.resolve_series(org, keys(5), host_of=lambda key: None)[0] == first


@pytest.mark.django_db
def test_rolled_back_ids_are_never_cached() -> None:
    org = OrganizationFactory()
    with transaction.atomic():
        sid = transaction.savepoint()
        ids, _ = resolver.resolve_series(org, keys(1, "ghost"), host_of=lambda key: None)
        transaction.savepoint_rollback(sid)
    assert all(key != keys(1, "ghost")[0] for _, key in resolver._local)
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
                ids, _ = resolver.resolve_series(org, list(reversed(wanted)) if index % 2 else wanted,
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


@pytest.fixture
def _fresh_epoch() -> Any:
    from apps.hosts import cache_scope

    cache_scope.forget()
    yield
    cache_scope.forget()  # a rotated epoch was rolled back with the test's transaction


@pytest.mark.django_db
def test_recreated_organization_with_the_same_pk_does_not_reuse_cached_ids(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Redis outlives databases and organizations: ids cached for "organization N" must never be handed to
    a new organization N (database re-created, restored, or the organization deleted and created again)."""
    from apps.hosts.services import resolve_hosts
    from apps.organizations.models import Organization

    org = OrganizationFactory()
    wanted = keys(3, "recreated")
    with django_capture_on_commit_callbacks(execute=True):
        old_hosts = resolve_hosts(organization=org, names=["h0"])
        old_ids, _ = resolver.resolve_series(org, wanted, host_of=lambda key: old_hosts["h0"])
    pk = org.pk
    org.delete()  # cascades to its series and hosts; the caches (local dict and Redis) keep the old ids
    again = OrganizationFactory(pk=pk)
    assert Organization.objects.get(pk=pk).public_id != org.public_id

    with django_capture_on_commit_callbacks(execute=True):
        new_hosts = resolve_hosts(organization=again, names=["h0"])
        new_ids, created = resolver.resolve_series(again, wanted, host_of=lambda key: new_hosts["h0"])
    assert created == 3
    assert not set(new_ids.values()) & set(old_ids.values())
    assert new_hosts["h0"] != old_hosts["h0"]
    assert Series.objects.filter(organization=again, id__in=new_ids.values()).count() == 3
    # And the Redis layer alone (another process, empty local dict) does not know the old ids either.
    resolver.forget_local_cache()
    assert resolver.resolve_series(again, wanted, host_of=lambda key: None) == (new_ids, 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("_fresh_epoch")
def test_flush_metrics_caches_rotates_the_epoch_and_deletes_cached_ids(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """After restoring a backup in place (same database, same organization UUIDs) the command makes every
    id cached before unreachable and removes the keys."""
    from io import StringIO

    from django.core.management import call_command
    from django_redis import get_redis_connection

    from apps.hosts import cache_scope

    org = OrganizationFactory()
    with django_capture_on_commit_callbacks(execute=True):
        resolver.resolve_series(org, keys(2, "flushed"), host_of=lambda key: None)
    before = cache_scope.org_scope(org)
    redis = get_redis_connection("default")
    assert redis.exists(resolver.redis_key(before))

    out = StringIO()
    call_command("flush_metrics_caches", stdout=out)
    assert "new cache epoch" in out.getvalue()
    assert cache_scope.org_scope(org) != before
    assert not redis.exists(resolver.redis_key(before))
    assert resolver._local == {}
