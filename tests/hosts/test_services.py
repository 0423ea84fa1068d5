"""Inventory services: audit, validation, the dependency graph, and the ingest hot path
(resolve_hosts, mark_hosts_seen) against real PostgreSQL and Redis."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.hosts import cache_scope, services
from apps.hosts.graph import downstream_closure, upstream_closure
from apps.hosts.live import broadcast_hosts_update
from apps.hosts.models import Host, NodeRef, Service, ServiceDependency
from apps.hosts.services import (
    UnknownHostsError,
    add_dependency,
    create_service,
    delete_host,
    delete_service,
    mark_hosts_seen,
    register_host,
    remove_dependency,
    resolve_hosts,
    update_host,
    update_service,
)
from tests.hosts.factories import HostFactory, ServiceFactory
from tests.organizations.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _actions(obj) -> list[str]:
    return list(AuditEvent.objects.filter(object_id=str(obj.public_id)).order_by("id").values_list("action", flat=True))


# --- hosts ----------------------------------------------------------------------------------------


def test_register_host_normalizes_validates_and_audits(org, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        host = register_host(organization=org, name=" web-1 ", country="de", tags={"role": "web"}, actor=owner)
    assert (host.name, host.country) == ("web-1", "DE")
    event = AuditEvent.objects.get(object_id=str(host.public_id))
    assert (event.action, event.actor_user_id, event.organization_id) == ("host.registered", owner.pk, org.pk)
    assert len(callbacks) == 1  # the live broadcast waits for the commit


def test_register_host_refuses_duplicates_and_bad_fields(org, owner):
    register_host(organization=org, name="web-1", actor=owner)
    with pytest.raises(ValidationError):
        register_host(organization=org, name="web-1", actor=owner)
    with pytest.raises(ValidationError) as exc:
        register_host(organization=org, name="web-2", country="XX", latitude=100, actor=owner)
    assert {"country", "latitude"} <= set(exc.value.message_dict)
    with pytest.raises(TypeError):
        register_host(organization=org, name="web-3", last_seen_at=T0, actor=owner)


def test_update_host_records_the_diff(org, owner):
    host = HostFactory(organization=org, environment="staging")
    update_host(host=host, environment="production", is_active=False, actor=owner)
    event = AuditEvent.objects.get(action="host.updated")
    assert event.changes["environment"] == ["staging", "production"]
    assert event.changes["is_active"] == [True, False]
    host.refresh_from_db()
    assert not host.is_active


def test_renaming_a_host_evicts_the_old_name_from_the_cache(org, owner, django_capture_on_commit_callbacks):
    host = HostFactory(organization=org, name="old")
    assert resolve_hosts(organization=org, names=["old"]) == {"old": host.pk}
    with django_capture_on_commit_callbacks(execute=True):
        update_host(host=host, name="new", actor=owner)
    ids = resolve_hosts(organization=org, names=["old"])  # auto-registers a fresh "old"
    assert ids["old"] != host.pk


def test_delete_host_cascades_and_audits(org, owner):
    host = HostFactory(organization=org)
    service = ServiceFactory(organization=org, host=host)
    delete_host(host=host, actor=owner)
    assert not Host.objects.exists() and not Service.objects.filter(pk=service.pk).exists()
    assert AuditEvent.objects.filter(action="host.deleted", organization=org).count() == 1


# --- services -------------------------------------------------------------------------------------


def test_service_lifecycle_is_audited(org, owner):
    host = HostFactory(organization=org)
    service = create_service(organization=org, host=host, name="api", kind="http",
                             health_check_url="https://api.example.com/health", actor=owner)
    update_service(service=service, description="public API", actor=owner)
    delete_service(service=service, actor=owner)
    assert _actions(service) == ["service.created", "service.updated", "service.deleted"]


def test_service_on_another_organizations_host_is_refused(org, other_org, owner):
    with pytest.raises(ValidationError) as exc:
        create_service(organization=org, host=HostFactory(organization=other_org), name="api", actor=owner)
    assert "host" in exc.value.message_dict


def test_service_names_are_unique_per_host(org, owner):
    host = HostFactory(organization=org)
    create_service(organization=org, host=host, name="api", actor=owner)
    create_service(organization=org, host=HostFactory(organization=org), name="api", actor=owner)
    with pytest.raises(ValidationError):
        create_service(organization=org, host=host, name="api", actor=owner)


# --- dependencies ---------------------------------------------------------------------------------


@pytest.fixture
def graph(org, owner):
    """db-1 (host) → api (service on web-1) → web-1 (host); edges read "upstream → downstream"."""
    db = HostFactory(organization=org, name="db-1")
    web = HostFactory(organization=org, name="web-1")
    api = ServiceFactory(organization=org, host=web, name="api")
    add_dependency(organization=org, upstream=db, downstream=api, actor=owner)
    add_dependency(organization=org, upstream=api, downstream=web, actor=owner)
    return db, api, web


def test_cycle_is_rejected_with_its_path(org, owner, graph):
    db, api, web = graph
    with pytest.raises(ValidationError) as exc:
        add_dependency(organization=org, upstream=api, downstream=db, actor=owner)
    assert exc.value.messages == ["api → db-1 → api would form a cycle."]
    with pytest.raises(ValidationError) as exc:
        add_dependency(organization=org, upstream=web, downstream=db, actor=owner)
    assert exc.value.messages == ["web-1 → db-1 → api → web-1 would form a cycle."]
    assert ServiceDependency.objects.count() == 2


def test_self_loop_and_duplicate_edges_are_rejected(org, owner, graph):
    db, api, _ = graph
    with pytest.raises(ValidationError, match="cannot depend on itself"):
        add_dependency(organization=org, upstream=db, downstream=db, actor=owner)
    with pytest.raises(ValidationError, match="already exists"):
        add_dependency(organization=org, upstream=db, downstream=api, actor=owner)


def test_dependency_across_organizations_is_rejected(org, other_org, owner):
    with pytest.raises(ValidationError) as exc:
        add_dependency(organization=org, upstream=HostFactory(organization=other_org),
                       downstream=HostFactory(organization=org), actor=owner)
    assert "upstream" in exc.value.message_dict


def test_closures_follow_edges_transitively(org, graph):
    db, api, web = graph
    unrelated = HostFactory(organization=org)
    assert upstream_closure(web) == {NodeRef.of(api), NodeRef.of(db)}
    assert downstream_closure(db) == {NodeRef.of(api), NodeRef.of(web)}
    assert upstream_closure(db) == set()
    assert downstream_closure(unrelated) == set()


def test_closures_terminate_on_a_cycle_inserted_behind_the_service(org, graph):
    db, api, web = graph
    ServiceDependency.objects.create(organization=org, upstream_host=web, downstream_host=db)
    assert downstream_closure(db) == {NodeRef.of(api), NodeRef.of(web)}


def test_dependency_add_and_remove_are_audited(org, owner, graph):
    edge = ServiceDependency.objects.first()
    remove_dependency(dependency=edge, actor=owner)
    assert _actions(edge) == ["dependency.added", "dependency.removed"]


# --- resolve_hosts --------------------------------------------------------------------------------


def test_resolve_hosts_registers_unknown_hosts_and_audits_the_token(org, make_token):
    token, _ = make_token()
    known = HostFactory(organization=org, name="known")
    ids = resolve_hosts(organization=org, names=["known", "new-1", "new-2", "new-1"], actor=token)
    assert ids["known"] == known.pk
    assert set(ids) == {"known", "new-1", "new-2"}
    events = AuditEvent.objects.filter(action="host.registered", organization=org)
    assert sorted(events.values_list("object_repr", flat=True)) == ["new-1", "new-2"]
    assert {e.actor_token_id for e in events} == {token.pk}


@pytest.mark.parametrize("fleet", [2, 60])
def test_a_push_registers_its_new_fleet_in_a_fixed_number_of_statements_and_one_broadcast(
        org, make_token, monkeypatch, django_capture_on_commit_callbacks, fleet):
    token, _ = make_token()
    HostFactory(organization=org, name="known")
    sent: list[tuple[int, dict]] = []
    monkeypatch.setattr(services, "broadcast_hosts_update", lambda org_id, payload: sent.append((org_id, payload)))
    names = ["known", *(f"new-{i}" for i in range(fleet))]
    cache_scope.epoch()  # read once a minute per process; not part of the statement count
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        ids = resolve_hosts(organization=org, names=names, actor=token)
    assert set(ids) == set(names)
    # the lookup, then SAVEPOINT, the INSERT, reading the ids back, the audit INSERT, RELEASE: for any fleet
    assert [q["sql"].split()[0] for q in queries.captured_queries] == [
        "SELECT", "SAVEPOINT", "INSERT", "SELECT", "INSERT", "RELEASE"]
    new = Host.objects.filter(organization=org, name__startswith="new-")
    assert dict(new.values_list("name", "pk")) == {name: ids[name] for name in names if name != "known"}
    events = AuditEvent.objects.filter(action="host.registered", organization=org)
    assert sorted(events.values_list("object_id", flat=True)) == sorted(str(h.public_id) for h in new)
    assert {e.actor_token_id for e in events} == {token.pk}
    assert [(org_id, sorted(h["name"] for h in payload["hosts"])) for org_id, payload in sent] == [
        (org.pk, sorted(name for name in names if name != "known"))]


def test_resolve_hosts_without_auto_registration_names_the_unknown_hosts(org):
    org.auto_register_hosts = False
    org.save()
    HostFactory(organization=org, name="known")
    with pytest.raises(UnknownHostsError) as exc:
        resolve_hosts(organization=org, names=["zeta", "known", "alpha"])
    assert exc.value.names == ["alpha", "zeta"]
    assert "alpha, zeta" in str(exc.value)
    assert Host.objects.count() == 1


def test_resolve_hosts_does_no_query_for_known_hosts(org, django_assert_num_queries,
                                                     django_capture_on_commit_callbacks):
    attrs = {"probe-1": {"country": "DE", "region": "eu"}}
    with django_capture_on_commit_callbacks(execute=True):  # caches fill when the registration commits
        resolve_hosts(organization=org, names=["probe-1", "probe-2"], attributes=attrs)
    with django_assert_num_queries(0):
        ids = resolve_hosts(organization=org, names=["probe-1", "probe-2"], attributes=attrs)
    assert set(ids) == {"probe-1", "probe-2"}


def test_resolve_hosts_uses_redis_when_the_process_cache_is_cold(org, django_assert_num_queries,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ids = resolve_hosts(organization=org, names=["a", "b"], attributes={"a": {"region": "eu"}})
    services._local_ids.clear()
    services._local_fingerprints.clear()
    with django_assert_num_queries(0):
        assert resolve_hosts(organization=org, names=["a", "b"], attributes={"a": {"region": "eu"}}) == ids


def test_resolve_hosts_keeps_organizations_apart(org, other_org):
    ours = resolve_hosts(organization=org, names=["web-1"])
    theirs = resolve_hosts(organization=other_org, names=["web-1"])
    assert ours["web-1"] != theirs["web-1"]
    assert Host.objects.get(pk=theirs["web-1"]).organization == other_org


def test_resolve_hosts_attributes_fill_new_hosts_and_update_changed_ones(org, make_token):
    token, _ = make_token()
    resolve_hosts(organization=org, names=["p"], actor=token,
                  attributes={"p": {"country": "de", "region": "eu", "city": "Berlin", "latitude": "52.5",
                                    "isp": "ignored", "is_active": False}})
    host = Host.objects.get(name="p")
    assert (host.country, host.region, host.city, host.latitude, host.is_active) == ("DE", "eu", "Berlin", 52.5, True)
    resolve_hosts(organization=org, names=["p"], actor=token,
                  attributes={"p": {"country": "FR", "region": "eu", "city": "Paris", "latitude": 48.9}})
    host.refresh_from_db()
    assert (host.country, host.city, host.latitude) == ("FR", "Paris", 48.9)
    event = AuditEvent.objects.get(action="host.updated", object_id=str(host.public_id))
    assert event.changes["city"] == ["Berlin", "Paris"] and event.actor_token_id == token.pk


def test_resolve_hosts_drops_invalid_attributes_instead_of_failing(org):
    resolve_hosts(organization=org, names=["p"], attributes={"p": {"country": "XX", "latitude": 200, "region": "eu"}})
    host = Host.objects.get(name="p")
    assert (host.country, host.latitude, host.region) == ("", None, "eu")


def test_resolve_hosts_warns_about_a_bad_attribute_on_every_push(org, caplog):
    """Cleaning is memoised per attribute set; its warnings are not: each push names its own host."""
    for name in ("p", "p", "q"):
        resolve_hosts(organization=org, names=[name], attributes={name: {"country": "XX", "region": "eu"}})
    warnings = [r.getMessage() for r in caplog.records if "Ignoring host attribute country" in r.getMessage()]
    assert [w.split(" for ")[1].split(":")[0] for w in warnings] == ["p", "p", "q"]
    assert Host.objects.get(name="q").region == "eu"


def test_resolve_hosts_validates_a_repeated_attribute_set_once(org, monkeypatch):
    field = Host._meta.get_field("region")
    calls = []
    clean = field.clean

    def counting(value, instance):
        calls.append(value)
        return clean(value, instance)

    monkeypatch.setattr(field, "clean", counting)
    services._cleaned_memo.clear()
    for i in range(3):
        resolve_hosts(organization=org, names=[f"h{i}"], attributes={f"h{i}": {"region": "eu-central-1"}})
    assert calls == ["eu-central-1"]
    assert set(Host.objects.filter(organization=org).values_list("region", flat=True)) == {"eu-central-1"}


def test_attribute_values_that_compare_equal_are_cleaned_apart():
    """1 == True (and hash alike), yet a text field cleans them to "1" and "True": the memo keeps types."""
    assert services._cleaned("a", {"city": 1})[0] == {"city": "1"}
    assert services._cleaned("a", {"city": True})[0] == {"city": "True"}
    assert services._cleaned("a", {"tags": {"team": "db"}, "city": "Oslo"})[0]["tags"] == {"team": "db"}  # not memoised


def test_resolve_hosts_refuses_empty_names(org):
    with pytest.raises(ValueError, match="Invalid host names"):
        resolve_hosts(organization=org, names=[""])


@pytest.mark.django_db(transaction=True)
def test_concurrent_pushes_register_a_new_host_once():
    organization = OrganizationFactory()
    names = [f"node-{i}" for i in range(20)]
    barrier = threading.Barrier(4)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def push() -> None:
        try:
            barrier.wait()
            results.append(resolve_hosts(organization=organization, names=names))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=push) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(result == results[0] for result in results)
    assert Host.objects.filter(organization=organization).count() == 20
    assert AuditEvent.objects.filter(action="host.registered", organization=organization).count() == 20


# --- mark_hosts_seen ------------------------------------------------------------------------------


def test_mark_hosts_seen_is_monotonic_and_one_statement(org, django_assert_num_queries):
    a, b = HostFactory(organization=org), HostFactory(organization=org, last_seen_at=T0)
    cache_scope.epoch()  # read once a minute per process; not part of the statement count
    with django_assert_num_queries(1):
        mark_hosts_seen(organization_id=org.pk, host_ids=[a.pk, b.pk], when=T0 - datetime.timedelta(minutes=1))
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.last_seen_at == T0 - datetime.timedelta(minutes=1)
    assert b.last_seen_at == T0  # an older timestamp never moves last_seen_at back


def test_mark_hosts_seen_writes_at_most_once_per_window(org, django_assert_num_queries):
    host = HostFactory(organization=org)
    mark_hosts_seen(organization_id=org.pk, host_ids=[host.pk], when=T0)
    with django_assert_num_queries(0):
        mark_hosts_seen(organization_id=org.pk, host_ids=[host.pk], when=T0 + datetime.timedelta(seconds=10))
    host.refresh_from_db()
    assert host.last_seen_at == T0
    cache.delete(services.seen_key(host.pk))  # the window passed
    mark_hosts_seen(organization_id=org.pk, host_ids=[host.pk], when=T0 + datetime.timedelta(seconds=40))
    host.refresh_from_db()
    assert host.last_seen_at == T0 + datetime.timedelta(seconds=40)


def test_mark_hosts_seen_claims_each_window_for_its_own_time(org, settings):
    """One script call claims both throttles; each key expires after its own window's seconds."""
    from apps.core import redis

    settings.FIBERSTACK_HOST_BROADCAST_INTERVAL = 7
    hosts = HostFactory.create_batch(3, organization=org)
    mark_hosts_seen(organization_id=org.pk, host_ids=[h.pk for h in hosts], when=T0, broadcast=True)
    client = redis.client()
    for host in hosts:
        assert 25 < client.ttl(cache.make_key(services.seen_key(host.pk))) <= services.SEEN_RESOLUTION_SECONDS
        assert 0 < client.ttl(cache.make_key(services.live_key(host.pk))) <= 7
    assert Host.objects.filter(organization=org, last_seen_at=T0).count() == 3


def test_mark_hosts_seen_ignores_other_organizations_hosts(org, other_org):
    theirs = HostFactory(organization=other_org)
    mark_hosts_seen(organization_id=org.pk, host_ids=[theirs.pk], when=T0)
    theirs.refresh_from_db()
    assert theirs.last_seen_at is None


def test_mark_hosts_seen_is_not_audited(org):
    host = HostFactory(organization=org)
    mark_hosts_seen(organization_id=org.pk, host_ids=[host.pk], when=T0)
    assert not AuditEvent.objects.filter(object_id=str(host.public_id)).exists()


@override_settings(CACHES={"default": {
    "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}})
def test_ingest_helpers_fail_open_when_redis_is_down(org):
    ids = resolve_hosts(organization=org, names=["p"])
    mark_hosts_seen(organization_id=org.pk, host_ids=ids.values(), when=T0)
    assert Host.objects.get(name="p").last_seen_at == T0


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                               "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}})
def test_broadcast_never_raises_when_redis_is_down(caplog):
    broadcast_hosts_update(1, {"hosts": []})
    assert "Could not broadcast" in caplog.text


def test_a_rolled_back_registration_is_not_cached(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        resolve_hosts(organization=org, names=["ghost"])
        raise RuntimeError("the push failed after resolving")
    assert cache.get(services._id_key(cache_scope.org_scope(org), "ghost")) is None
    assert services._local_ids == {}
    assert not Host.objects.filter(name="ghost").exists()
