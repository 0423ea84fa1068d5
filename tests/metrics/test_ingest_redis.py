"""Redis on the ingest path, against the real Redis: a small constant number of round trips per request
whatever the number of hosts, and with Redis unreachable an ingest still answers 2xx quickly, stores
every sample, and the read API answers from PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from redis.connection import AbstractConnection

from apps.hosts import services as host_services
from apps.hosts.models import Host
from apps.metrics import hot
from apps.metrics import live as live_points
from apps.metrics.models import Series
from apps.metrics.read.catalogue import CATALOGUE
from apps.metrics.series import forget_local_cache
from fiberstack.settings.base import CACHES
from tests.metrics.factories import post, sample_count

pytestmark = pytest.mark.django_db

NOW_S = int(time.time()) - 60
FIELDS = 10
# Rate limits (request, samples), host ids, host attributes, series ids (lookup and store after
# commit), hot tier, hosts seen (last_seen and live-event claims in one script call), alert evaluation (heartbeats
# and per-rule coalescing in one pipeline), live chart points and saved dashboards' notices (one read of the
# organization's watch set, at most once a second per process, shared by both): at most one round trip each.
MAX_ROUND_TRIPS = 11


def body(hosts: int, at: int = NOW_S) -> str:
    fields = ",".join(f"usage_{i}={i}i" for i in range(FIELDS))
    return "".join(f"cpu,hostname=host_{h},region=eu {fields} {at}000000000\n" for h in range(hosts))


class RoundTrips:
    """Counts what redis-py writes to a socket: one per command, one per pipeline."""

    def __init__(self) -> None:
        self.count = 0

    def reset(self) -> None:
        self.count = 0


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    counter = RoundTrips()
    send = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        counter.count += 1
        send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return counter


@pytest.fixture
def cold() -> Iterator[None]:
    """Every request starts with empty in-process caches, as a fresh worker would."""
    forget_local_cache()
    host_services._local_ids.clear()
    CATALOGUE.clear()
    live_points._watched_cache.clear()
    yield
    forget_local_cache()
    host_services._local_ids.clear()


def ingest(token: str, payload: str, capture: Any) -> Any:
    with capture(execute=True):
        response = post("/api/v1/write?precision=ns", payload, token=token)
    assert response.status_code == 204, response.content
    return response


def trips_for(hosts: int, organization: Any, token: str, round_trips: RoundTrips, capture: Any) -> tuple[int, int]:
    """Round trips of a first push of ``hosts`` hosts (every host and series new, every cache cold) and
    of a later one with the throttles' windows open again (the worst steady-state case)."""
    forget_local_cache()
    host_services._local_ids.clear()
    live_points._watched_cache.clear()
    round_trips.reset()
    ingest(token, body(hosts), capture)
    first = round_trips.count
    assert Host.objects.filter(organization=organization).count() == hosts
    assert sample_count(organization) == hosts * FIELDS
    client = hot._redis()
    for host in Host.objects.filter(organization=organization):
        host_services.cache.delete(host_services.seen_key(host.pk))
    live = list(client.scan_iter(f"{settings.CACHES['default']['KEY_PREFIX']}:*:hosts:live:*"))
    assert len(live) >= hosts
    client.delete(*live)
    round_trips.reset()
    ingest(token, body(hosts, NOW_S + 10), capture)
    assert sample_count(organization) == 2 * hosts * FIELDS
    assert Host.objects.filter(organization=organization, last_seen_at__isnull=False).count() == hosts
    return first, round_trips.count


def test_round_trips_per_ingest_request_do_not_grow_with_hosts(org: Any, other_org: Any, make_token: Any,
                                                               round_trips: RoundTrips, cold: None,
                                                               django_capture_on_commit_callbacks: Any) -> None:
    # A Redis server that never saw the hot tier's script answers its first EVALSHA with NOSCRIPT (two more
    # round trips, once per server lifetime): load it first so that both counts see the steady state.
    hot._redis().script_load(hot._SET_IF_NEWER)
    one = trips_for(1, org, make_token()[1], round_trips, django_capture_on_commit_callbacks)
    many = trips_for(60, other_org, make_token(organization=other_org)[1], round_trips,
                     django_capture_on_commit_callbacks)
    assert one == many, (one, many)
    assert max(many) <= MAX_ROUND_TRIPS, many


def test_the_watch_set_is_read_once_per_ingest_for_host_pages_and_saved_dashboards_together(
        org: Any, make_token: Any, cold: None, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: Any) -> None:
    """Both live consumers run on every ingest; the saved dashboards' mark rides in the host pages' watch
    set, so a cold process reads it once, not once per consumer (and an open dashboard is seen)."""
    import redis as redis_py

    from apps.metrics import live_dashboards

    reads: list[str] = []
    zrangebyscore = redis_py.Redis.zrangebyscore

    def counting(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(str(name))
        return zrangebyscore(self, name, *args, **kwargs)

    monkeypatch.setattr(redis_py.Redis, "zrangebyscore", counting)
    live_dashboards.watch_dashboards(org.pk)
    live_points._watched_cache.clear()
    queued: list[Any] = []
    monkeypatch.setattr(live_dashboards.THROTTLE, "push", lambda client, org_id, pending: queued.append(pending))
    ingest(make_token()[1], body(3), django_capture_on_commit_callbacks)
    assert len(reads) == 1, reads
    assert queued == [{org.pk: {f"cpu_usage_{i}": "1" for i in range(FIELDS)}}]  # names once, hosts coalesced


def test_last_seen_claims_every_host_in_one_round_trip(org: Any, round_trips: RoundTrips) -> None:
    hosts = [Host.objects.create(organization=org, name=f"h{i}") for i in range(40)]
    when = Host.objects.model._meta.get_field("last_seen_at").to_python("2026-12-01T10:00:00Z")
    round_trips.reset()
    host_services.mark_hosts_seen(organization_id=org.pk, host_ids=[h.pk for h in hosts], when=when)
    assert round_trips.count == 1
    assert Host.objects.filter(organization=org, last_seen_at=when).count() == 40
    # Within the window nothing is claimed again (still one round trip, no UPDATE).
    later = when.replace(minute=1)
    host_services.mark_hosts_seen(organization_id=org.pk, host_ids=[h.pk for h in hosts], when=later)
    assert round_trips.count == 2
    assert Host.objects.filter(organization=org, last_seen_at=when).count() == 40
    # Reopening one host's window (as tests and operators do through the cache) writes that host only.
    host_services.cache.delete(host_services.seen_key(hosts[0].pk))
    host_services.mark_hosts_seen(organization_id=org.pk, host_ids=[h.pk for h in hosts], when=later)
    assert list(Host.objects.filter(organization=org, last_seen_at=later)) == [hosts[0]]


UNREACHABLE = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}


@override_settings(CACHES=UNREACHABLE)
def test_redis_down_ingest_answers_quickly_stores_everything_and_reads_work(
        org: Any, write_token: str, read_token: str, api_client: Any, cold: None,
        django_capture_on_commit_callbacks: Any) -> None:
    started = time.monotonic()
    ingest(write_token, body(30), django_capture_on_commit_callbacks)
    ingest(write_token, body(30, NOW_S + 10), django_capture_on_commit_callbacks)
    assert time.monotonic() - started < 3.0
    assert sample_count(org) == 2 * 30 * FIELDS
    assert Host.objects.filter(organization=org, last_seen_at__isnull=False).count() == 30  # fail open
    client = api_client(token=read_token)
    metrics = client.get("/api/v1/metrics", {"name": "cpu_usage_3", "start": NOW_S - 60, "end": NOW_S + 60})
    assert metrics.status_code == 200
    assert [len(s["points"]) for s in metrics.json()["series"]] == [2] * 30
    latest = client.get("/api/v1/metrics/latest", {"labels": 'hostname="host_7"'})
    assert latest.status_code == 200
    assert {(s["name"], s["time"], s["value"]) for s in latest.json()["series"]} == {
        (f"cpu_usage_{i}", float(NOW_S + 10), float(i)) for i in range(FIELDS)}
    assert Series.objects.filter(organization=org).count() == 30 * FIELDS


def test_an_unreachable_redis_is_not_retried_on_every_call(settings: Any) -> None:
    """A server that does not answer costs one connect attempt per window, not one per call: calls in
    the window fail at once without touching the network."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from apps.core import redis

    settings.CACHES = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:2/0"}}
    settings.FIBERSTACK_REDIS_DOWN_RETRY_SECONDS = 60
    with pytest.raises(RedisConnectionError, match=r"Connection refused|Error 111"):
        redis.client().ping()
    with pytest.raises(RedisConnectionError, match="did not answer recently"):
        redis.client().ping()
    settings.CACHES = CACHES  # the real server was never marked down
    assert redis.client().ping() is True


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback TCP port that completes connects (the kernel's backlog) but never answers: a hung Redis."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_a_redis_that_stops_answering_costs_one_timeout_not_one_per_call(
        settings: Any, silent_server: int, org: Any, write_token: str, cold: None,
        django_capture_on_commit_callbacks: Any) -> None:
    options = {**CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3}
    settings.CACHES = {"default": {**CACHES["default"], "LOCATION": f"redis://127.0.0.1:{silent_server}/0",
                                   "OPTIONS": options}}
    settings.FIBERSTACK_REDIS_DOWN_RETRY_SECONDS = 5
    started = time.monotonic()
    ingest(write_token, body(20), django_capture_on_commit_callbacks)
    elapsed = time.monotonic() - started
    # About nine Redis calls per cold request: 0.3 s each without the fail-fast window.
    assert elapsed < 1.5, elapsed
    assert sample_count(org) == 20 * FIELDS
