"""Write use-cases for the inventory. Each change is atomic, audited in the same transaction and
broadcast to live pages after commit (Zulip `do_*` actions). `resolve_hosts` and `mark_hosts_seen`
sit on the metrics ingest hot path (the latter through the ingest consumer in `apps.hosts.seen`) and are
built to do no database work for hosts already known."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.audit.services import record_event, record_events, record_update, snapshot
from apps.core import redis
from apps.hosts import cache_scope
from apps.hosts.graph import cycle_error
from apps.hosts.live import broadcast_hosts_update, host_payload
from apps.hosts.models import Host, NodeRef, Service, ServiceDependency
from apps.organizations.models import Organization

logger = logging.getLogger(__name__)

# Fields an admin, the API or an agent's metadata may set on a host (name is handled separately).
INVENTORY_FIELDS = ("display_name", "environment", "datacenter", "country", "region", "city", "latitude",
                    "longitude", "tags", "hardware_info", "agent_version", "is_active")
# What an agent's metadata may fill in; is_active stays an admin decision.
AGENT_ATTRIBUTE_FIELDS = frozenset(INVENTORY_FIELDS) - {"is_active"}
SERVICE_FIELDS = ("name", "kind", "health_check_url", "description", "host")
# Series labels that name inventory fields of the series' host (label -> field), e.g. Telegraf's or TSBS's
# `datacenter=eu-central-1a,region=eu-central-1`; FIBERSTACK_HOST_INVENTORY_LABELS replaces the table.
DEFAULT_INVENTORY_LABELS = {
    "environment": "environment", "env": "environment", "datacenter": "datacenter", "dc": "datacenter",
    "region": "region", "country": "country", "city": "city",
}

# name→id cache: Redis for the fleet of workers, plus a per-process dict in front of it. The local
# entries expire quickly because a host deleted in another process is only evicted from Redis. Both are
# keyed by cache_scope.org_scope() (database identity + organization public_id), never by the bare pk: a
# re-created or restored database, or a re-created organization, must not read ids cached for another.
HOST_ID_CACHE_TIMEOUT = 3600
LOCAL_CACHE_TTL = 60.0
LOCAL_CACHE_MAX = 100_000
_local_ids: dict[tuple[str, str], tuple[int, float]] = {}
_local_fingerprints: dict[tuple[str, int], tuple[str, float]] = {}
SEEN_RESOLUTION_SECONDS = 30


class UnknownHostsError(Exception):
    """Raised when auto-registration is off and pushes name hosts the organization does not have."""

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        super().__init__("Unknown hosts (auto-registration is off): " + ", ".join(self.names))


# --- hosts -----------------------------------------------------------------------------------------


def _normalize_host(host: Host) -> None:
    host.name = host.name.strip()
    host.country = (host.country or "").strip().upper()


def _id_key(scope: str, name: str) -> str:
    digest = hashlib.blake2b(name.encode(), digest_size=12).hexdigest()
    return f"hosts:id:{scope}:{digest}"


def _attrs_key(epoch: str, pk: int) -> str:
    return f"hosts:attrs:{epoch}:{pk}"


def seen_key(pk: int, epoch: str | None = None) -> str:
    """Cache key that throttles last_seen writes of one host (tests clear it to open the window);
    ``epoch`` spares a caller naming many hosts a lookup per host."""
    return f"hosts:seen:{epoch or cache_scope.epoch()}:{pk}"


def live_key(pk: int, epoch: str | None = None) -> str:
    """Cache key that throttles the live "hosts.update" event of one host."""
    return f"hosts:live:{epoch or cache_scope.epoch()}:{pk}"


def broadcast_interval() -> int:
    """Seconds between two live events for one host (FIBERSTACK_HOST_BROADCAST_INTERVAL)."""
    return int(getattr(settings, "FIBERSTACK_HOST_BROADCAST_INTERVAL", 5))


Window = tuple[Callable[[int, str], str], int]  # (cache key of a host in an epoch, seconds the claim lasts)

# KEYS: the hosts' keys, window after window; ARGV[1]: hosts per window, ARGV[2..]: each window's seconds.
# Per key 1 when this call claimed it (SET NX EX succeeded), else 0. One command with one array reply
# instead of a pipeline of one SET per host and window (whose packing and per-reply parsing cost the web
# worker about as much as the rest of the hosts consumer).
_CLAIM = """
local out = {}
local n = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'EX', ARGV[math.floor((i - 1) / n) + 2], 'NX') then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""


def _claim(host_ids: list[int], windows: Sequence[Window]) -> list[list[int]] | None:
    """Per window, the hosts whose turn it is: ``SET NX EX`` of each host's key (the cache's key, so
    ``cache.delete(seen_key(pk))`` reopens a window), every host and window in one script call -- one
    round trip whatever their number (EVAL, not EVALSHA: a server that never saw the script costs no
    NOSCRIPT retry). None when Redis is unavailable: each caller decides how to fail."""
    if not host_ids:
        return [[] for _ in windows]
    epoch = cache_scope.epoch()
    make_key = cache.make_key
    keys = [make_key(key_of(pk, epoch)) for key_of, _ in windows for pk in host_ids]
    try:
        claimed = redis.client().eval(_CLAIM, len(keys), *keys, len(host_ids), *(seconds for _, seconds in windows))
    except redis.RedisError as exc:
        logger.warning("host throttles unavailable (last_seen written for every host, no live event): %s", exc)
        return None
    n = len(host_ids)
    return [[pk for pk, ok in zip(host_ids, claimed[i * n:(i + 1) * n], strict=True) if ok]
            for i in range(len(windows))]


def _org_scope(organization_id: int) -> str:
    public_id = Organization.objects.filter(pk=organization_id).values_list("public_id", flat=True).first()
    return f"{cache_scope.epoch()}:{public_id.hex if public_id else 'gone'}"


def _forget_host(scope: str, name: str) -> None:
    _local_ids.pop((scope, name), None)
    cache.delete(_id_key(scope, name))


def _broadcast_on_commit(organization_id: int, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: broadcast_hosts_update(organization_id, payload))


@transaction.atomic
def register_host(*, organization: Organization, name: str, actor: Any, **fields: Any) -> Host:
    """Add a host to the inventory (admins and the API; agents arrive through `resolve_hosts`)."""
    unknown = set(fields) - set(INVENTORY_FIELDS)
    if unknown:
        raise TypeError(f"register_host() got unexpected fields: {', '.join(sorted(unknown))}")
    host = Host(organization=organization, name=name, **fields)
    _normalize_host(host)
    host.full_clean()
    host.save()
    record_event(action="host.registered", actor=actor, organization=organization, target=host,
                 after=snapshot(host))
    _broadcast_on_commit(organization.pk, {"hosts": [host_payload(host)]})
    return host


def _refuse_organization_change(host: Host, changes: dict[str, Any]) -> None:
    """A host never moves between organizations: its series, samples, services and audit trail would
    stay with the old one (and another tenant's agents would start writing into its name). Passing the
    current organization is allowed and ignored, so a form that shows the field read-only still saves."""
    for field in ("organization", "organization_id"):
        if field not in changes:
            continue
        value = changes.pop(field)
        if getattr(value, "pk", value) != host.organization_id:
            raise ValidationError({"organization": "A host's organization cannot be changed after creation."})


@transaction.atomic
def update_host(*, host: Host, actor: Any, **changes: Any) -> Host:
    """Change inventory fields (or rename; agents then push under the new name). Deactivate with
    `is_active=False`, which keeps history and metrics attached. The organization cannot change."""
    _refuse_organization_change(host, changes)
    unknown = set(changes) - {"name", *INVENTORY_FIELDS}
    if unknown:
        raise TypeError(f"update_host() got unexpected fields: {', '.join(sorted(unknown))}")
    locked = Host.objects.select_for_update().get(pk=host.pk)
    before = snapshot(locked)
    old_name = locked.name
    for field, value in changes.items():
        setattr(locked, field, value)
    _normalize_host(locked)
    locked.full_clean()
    locked.save()
    after = snapshot(locked)
    record_update(action="host.updated", actor=actor, organization=locked.organization_id,
                  target=locked, before=before, after=after)
    if locked.name != old_name:
        scope = _org_scope(locked.organization_id)
        transaction.on_commit(lambda: _forget_host(scope, old_name))
    _broadcast_on_commit(locked.organization_id, {"hosts": [host_payload(locked)]})
    host.__dict__.update(locked.__dict__)
    return host


@transaction.atomic
def delete_host(*, host: Host, actor: Any) -> None:
    """Remove a host with its services and dependency edges. Prefer deactivating a host whose history
    matters; deletion is for mistakes and decommissioned test machines."""
    organization_id, name, public_id = host.organization_id, host.name, str(host.public_id)
    scope = _org_scope(organization_id)
    record_event(action="host.deleted", actor=actor, organization=organization_id, target=host,
                 before=snapshot(host))
    host.delete()
    transaction.on_commit(lambda: _forget_host(scope, name))
    _broadcast_on_commit(organization_id, {"removed": [public_id]})


@transaction.atomic
def delete_hosts(*, hosts: Iterable[Host], actor: Any) -> int:
    """Delete several hosts (the admin's bulk action) all-or-nothing, each through `delete_host`, so
    each is audited and evicted from the caches."""
    count = 0
    for host in hosts:
        delete_host(host=host, actor=actor)
        count += 1
    return count


# --- services --------------------------------------------------------------------------------------


def _check_same_org(organization_id: int, field: str, obj: Host | Service) -> None:
    if obj.organization_id != organization_id:
        raise ValidationError({field: "This belongs to another organization."})


@transaction.atomic
def create_service(*, organization: Organization, host: Host, name: str, actor: Any,
                   kind: str = Service.Kind.OTHER, health_check_url: str = "", description: str = "") -> Service:
    """Record a service running on `host` (which must belong to `organization`)."""
    _check_same_org(organization.pk, "host", host)
    service = Service(organization=organization, host=host, name=name.strip(), kind=kind,
                      health_check_url=health_check_url.strip(), description=description)
    service.full_clean()
    service.save()
    record_event(action="service.created", actor=actor, organization=organization, target=service,
                 after=snapshot(service))
    return service


@transaction.atomic
def update_service(*, service: Service, actor: Any, **changes: Any) -> Service:
    unknown = set(changes) - set(SERVICE_FIELDS)
    if unknown:
        raise TypeError(f"update_service() got unexpected fields: {', '.join(sorted(unknown))}")
    if "host" in changes:
        _check_same_org(service.organization_id, "host", changes["host"])
    locked = Service.objects.select_for_update().get(pk=service.pk)
    before = snapshot(locked)
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.full_clean()
    locked.save()
    after = snapshot(locked)
    record_update(action="service.updated", actor=actor, organization=locked.organization_id,
                  target=locked, before=before, after=after)
    service.__dict__.update(locked.__dict__)
    return service


@transaction.atomic
def delete_service(*, service: Service, actor: Any) -> None:
    record_event(action="service.deleted", actor=actor, organization=service.organization_id, target=service,
                 before=snapshot(service))
    service.delete()


# --- dependencies ----------------------------------------------------------------------------------


def _node_fields(prefix: str, node: Host | Service) -> dict[str, Any]:
    if isinstance(node, Host):
        return {f"{prefix}_host": node, f"{prefix}_service": None}
    if isinstance(node, Service):
        return {f"{prefix}_service": node, f"{prefix}_host": None}
    raise TypeError(f"A dependency node must be a Host or a Service, not {type(node).__name__}")


@transaction.atomic
def add_dependency(*, organization: Organization, upstream: Host | Service, downstream: Host | Service,
                   actor: Any) -> ServiceDependency:
    """Record that `downstream` depends on `upstream`. Refuses self-loops, duplicates and any edge that
    would close a cycle, naming the cycle ("db-1 → api → db-1 would form a cycle")."""
    _check_same_org(organization.pk, "upstream", upstream)
    _check_same_org(organization.pk, "downstream", downstream)
    up, down = NodeRef.of(upstream), NodeRef.of(downstream)
    if up == down:
        raise ValidationError(f"{upstream.name} cannot depend on itself.")
    # Serialize graph edits per organization: two concurrent edges can each be acyclic alone and form a
    # cycle together. NO KEY UPDATE leaves the FOR KEY SHARE that inserts of org-owned rows take unblocked.
    Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).values_list("pk").get()
    message = cycle_error(organization.pk, upstream, downstream)
    if message is not None:
        raise ValidationError(message)
    dependency = ServiceDependency(organization=organization, **_node_fields("upstream", upstream),
                                   **_node_fields("downstream", downstream))
    dependency.full_clean()
    dependency.save()
    record_event(action="dependency.added", actor=actor, organization=organization, target=dependency,
                 after=snapshot(dependency))
    return dependency


@transaction.atomic
def remove_dependency(*, dependency: ServiceDependency, actor: Any) -> None:
    record_event(action="dependency.removed", actor=actor, organization=dependency.organization_id,
                 target=dependency, before=snapshot(dependency))
    dependency.delete()


# --- ingest hot path -------------------------------------------------------------------------------


def inventory_labels() -> Mapping[str, str]:
    """Label name -> Host field for labels that describe the host (FIBERSTACK_HOST_INVENTORY_LABELS)."""
    table = getattr(settings, "FIBERSTACK_HOST_INVENTORY_LABELS", DEFAULT_INVENTORY_LABELS)
    return {label: field for label, field in table.items() if field in AGENT_ATTRIBUTE_FIELDS}


def add_inventory_from_labels(into: dict[str, Any], labels: Iterable[tuple[str, str]],
                              table: Mapping[str, str]) -> None:
    """Fill ``into`` (a host's attributes for ``resolve_hosts``) from one series' labels; the first value
    seen for a field wins. Ingest calls this per distinct series of a request, with ``inventory_labels()``."""
    for label, value in labels:
        field = table.get(label)
        if field is not None and value and field not in into:
            into[field] = value


Cleaned = tuple[dict[str, Any], str]  # (the valid fields, their fingerprint)
# raw attribute items -> what cleaning them gives (and the warnings it logs): agents send the same few
# label values on every push, and validating them field by field was most of what a known host cost.
# A pure function of the input (no ids, nothing read from the database), so not scoped by organization.
# The key carries each value's type: 1, 1.0 and True are equal keys but may clean differently.
_cleaned_memo: dict[tuple[tuple[str, type, Any], ...], tuple[Cleaned, tuple[tuple[str, Any, str], ...]]] = {}
CLEANED_MEMO_MAX = 10_000


def _cleaned(name: str, raw: Mapping[str, Any]) -> Cleaned:
    """The inventory fields an agent's metadata may set, validated one by one, with their fingerprint. A
    bad value (an unknown country, latitude 200) is dropped with a warning, logged on every call: metadata
    must never make a push fail. Memoised for hashable inputs (label values always are)."""
    memo_key: tuple[tuple[str, type, Any], ...] | None = tuple((k, v.__class__, v) for k, v in raw.items())
    try:
        hit = _cleaned_memo.get(memo_key)  # type: ignore[arg-type]
    except TypeError:  # a list or dict value (tags, hardware_info): not memoised
        memo_key, hit = None, None
    if hit is None:
        cleaned: dict[str, Any] = {}
        problems: list[tuple[str, Any, str]] = []
        for key, value in raw.items():
            if key not in AGENT_ATTRIBUTE_FIELDS or value is None:
                continue
            if key == "country" and isinstance(value, str):
                value = value.strip().upper()
            field = Host._meta.get_field(key)
            try:
                cleaned[key] = field.clean(value, None)
            except ValidationError as exc:
                problems.append((key, value, "; ".join(exc.messages)))
        hit = ((cleaned, _fingerprint(cleaned)), tuple(problems))
        if memo_key is not None:
            if len(_cleaned_memo) >= CLEANED_MEMO_MAX:
                _cleaned_memo.clear()
            _cleaned_memo[memo_key] = hit
    for key, value, message in hit[1]:
        logger.warning("Ignoring host attribute %s=%r for %s: %s", key, value, name, message)
    return hit[0]


def _fingerprint(attributes: Mapping[str, Any]) -> str:
    encoded = json.dumps(attributes, sort_keys=True, default=str).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _remember_ids(scope: str, ids: Mapping[str, int], *, redis: bool) -> None:
    if len(_local_ids) > LOCAL_CACHE_MAX:
        _local_ids.clear()
    expires = time.monotonic() + LOCAL_CACHE_TTL
    for name, pk in ids.items():
        _local_ids[(scope, name)] = (pk, expires)
    if redis and ids:
        cache.set_many({_id_key(scope, name): pk for name, pk in ids.items()}, timeout=HOST_ID_CACHE_TIMEOUT)


def _remember_fingerprints(epoch: str, fingerprints: Mapping[int, str]) -> None:
    if len(_local_fingerprints) > LOCAL_CACHE_MAX:
        _local_fingerprints.clear()
    expires = time.monotonic() + LOCAL_CACHE_TTL
    for pk, value in fingerprints.items():
        _local_fingerprints[(epoch, pk)] = (value, expires)
    cache.set_many({_attrs_key(epoch, pk): value for pk, value in fingerprints.items()},
                   timeout=HOST_ID_CACHE_TIMEOUT)


def _lookup_ids(organization: Organization, scope: str, names: set[str]) -> tuple[dict[str, int], list[str]]:
    """Known ids from the local dict, then Redis, then one SELECT; returns (found, not found)."""
    organization_id = organization.pk
    now = time.monotonic()
    found: dict[str, int] = {}
    missing: list[str] = []
    for name in names:
        hit = _local_ids.get((scope, name))
        if hit is not None and hit[1] > now:
            found[name] = hit[0]
        else:
            missing.append(name)
    if not missing:
        return found, []
    keys = {_id_key(scope, name): name for name in missing}
    from_redis = {keys[key]: pk for key, pk in cache.get_many(list(keys)).items()}
    _remember_ids(scope, from_redis, redis=False)
    found.update(from_redis)
    missing = [name for name in missing if name not in from_redis]
    if not missing:
        return found, []
    from_db = dict(Host.objects.filter(organization_id=organization_id, name__in=missing).values_list("name", "id"))
    # Inside a caller's transaction these rows may be its own uncommitted registrations: cache on commit.
    transaction.on_commit(lambda: _remember_ids(scope, from_db, redis=True))
    found.update(from_db)
    return found, [name for name in missing if name not in from_db]


def _register_unknown(organization: Organization, scope: str, names: list[str],
                      attributes: Mapping[str, dict[str, Any]], actor: Any) -> dict[str, int]:
    """Insert the unknown hosts in one statement, audit and broadcast the ones this push created.

    A concurrent push may register some of the same names first: ``ON CONFLICT DO NOTHING`` waits for
    it and skips them, and they are then read back like the rest. What this push inserted is told apart
    by ``public_id``, which each new instance draws itself. Names go in sorted, so two pushes with
    overlapping fleets take their row locks in the same order and cannot deadlock."""
    hosts = [Host(organization=organization, name=name, **attributes.get(name, {})) for name in sorted(names)]
    with transaction.atomic():
        Host.objects.bulk_create(hosts, ignore_conflicts=True)
        ours = {host.public_id: host for host in hosts}
        registered: dict[str, int] = {}
        created: list[Host] = []
        rows = Host.objects.filter(organization=organization, name__in=names).values_list("name", "pk", "public_id")
        for name, pk, public_id in rows:
            registered[name] = pk
            if (host := ours.get(public_id)) is not None:
                host.pk = pk
                created.append(host)
        record_events({"action": "host.registered", "actor": actor, "organization": organization,
                       "target": host, "after": snapshot(host)} for host in created)
        if created:
            _broadcast_on_commit(organization.pk, {"hosts": [host_payload(host) for host in created]})
        # Cache only what committed: an id from a rolled-back push would point at nothing.
        transaction.on_commit(lambda: _remember_ids(scope, registered, redis=True))
    return registered


def _apply_attributes(organization: Organization, ids: Mapping[str, int], attributes: Mapping[str, Cleaned],
                      actor: Any) -> None:
    """Update hosts whose metadata changed since it was last applied; a fingerprint per host (local dict,
    then Redis) makes an unchanged payload cost no query."""
    wanted = {ids[name]: (name, attrs, fingerprint) for name, (attrs, fingerprint) in attributes.items()
              if attrs and name in ids}
    if not wanted:
        return
    epoch = cache_scope.epoch()
    now = time.monotonic()
    stale: dict[int, tuple[str, dict[str, Any], str]] = {}
    for pk, entry in wanted.items():
        hit = _local_fingerprints.get((epoch, pk))
        if hit is None or hit[1] <= now or hit[0] != entry[2]:
            stale[pk] = entry
    if stale:
        remote = cache.get_many([_attrs_key(epoch, pk) for pk in stale])
        _remember_fingerprints(epoch, {pk: entry[2] for pk, entry in stale.items()
                                       if remote.get(_attrs_key(epoch, pk)) == entry[2]})
        stale = {pk: entry for pk, entry in stale.items() if remote.get(_attrs_key(epoch, pk)) != entry[2]}
    if not stale:
        return
    applied: dict[int, str] = {}
    with transaction.atomic():
        for host in Host.objects.select_for_update().filter(organization=organization, pk__in=list(stale)):
            _, attrs, fingerprint = stale[host.pk]
            before = snapshot(host)
            changed = [field for field, value in attrs.items() if getattr(host, field) != value]
            for field in changed:
                setattr(host, field, attrs[field])
            if changed:
                host.save(update_fields=[*changed, "updated_at"])
                record_event(action="host.updated", actor=actor, organization=organization, target=host,
                             before=before, after=snapshot(host))
            applied[host.pk] = fingerprint
        transaction.on_commit(lambda: _remember_fingerprints(epoch, applied))


def resolve_hosts(*, organization: Organization, names: Iterable[str],
                  attributes: Mapping[str, Mapping[str, Any]] | None = None, actor: Any = None) -> dict[str, int]:
    """Map host names to Host ids. Unknown names are registered (audited "host.registered", actor = the
    agent token) when organization.auto_register_hosts, else UnknownHostsError. `attributes` (e.g.
    {"node-uuid": {"country": "DE", "region": "eu"}} from the probe payload) fill empty inventory fields on
    registration and update changed ones. Known hosts with unchanged attributes cost no query."""
    wanted = set(names)
    bad = sorted(name for name in wanted if not isinstance(name, str) or not name.strip() or len(name) > 200)
    if bad:
        raise ValueError(f"Invalid host names (empty or longer than 200 characters): {bad!r}")
    cleaned = {name: _cleaned(name, attrs) for name, attrs in (attributes or {}).items() if name in wanted}
    scope = cache_scope.org_scope(organization)
    found, unknown = _lookup_ids(organization, scope, wanted)
    registered: dict[str, int] = {}
    if unknown:
        if not organization.auto_register_hosts:
            raise UnknownHostsError(unknown)
        registered = _register_unknown(organization, scope, unknown,
                                       {name: dict(attrs) for name, (attrs, _) in cleaned.items()}, actor)
        found.update(registered)
    _apply_attributes(organization, found, {n: a for n, a in cleaned.items() if n not in registered}, actor)
    if registered and cleaned:
        epoch = cache_scope.epoch()
        transaction.on_commit(lambda: _remember_fingerprints(
            epoch, {registered[n]: fp for n, (a, fp) in cleaned.items() if n in registered and a}))
    return found


def mark_hosts_seen(*, organization_id: int, host_ids: Iterable[int], when: datetime.datetime,
                    broadcast: bool = False) -> None:
    """Set last_seen_at = greatest(last_seen_at, when) for the hosts, at most once per 30 s per host, in
    one UPDATE; with ``broadcast``, also send live pages a "hosts.update" for each host at most once per
    ``broadcast_interval()``. Both throttles are Redis keys per host claimed in ONE script call, so a request
    costs one round trip whatever the number of hosts (tests/metrics/test_ingest_redis.py). Redis down:
    every host is written (fail open) and no live event is sent. Not audited (telemetry, not a change)."""
    ids = sorted(set(host_ids))
    windows: list[Window] = [(seen_key, SEEN_RESOLUTION_SECONDS)]
    if broadcast:
        windows.append((live_key, broadcast_interval()))
    claims = _claim(ids, windows)
    _write_last_seen(organization_id, ids if claims is None else claims[0], when)
    if broadcast and claims and claims[1]:
        _broadcast_seen(organization_id, claims[1], when)


def _write_last_seen(organization_id: int, due: list[int], when: datetime.datetime) -> None:
    if not due:
        return
    with connection.cursor() as cursor:
        # The WHERE makes it greatest(): an older timestamp (a late, retried push) never moves it back,
        # and rows already at or past `when` are not rewritten.
        cursor.execute(
            f"UPDATE {Host._meta.db_table} SET last_seen_at = %s "  # noqa: S608 - table name is ours
            "WHERE organization_id = %s AND id = ANY(%s) AND (last_seen_at IS NULL OR last_seen_at < %s)",
            [when, organization_id, due, when],
        )


def _broadcast_seen(organization_id: int, host_ids: list[int], when: datetime.datetime) -> None:
    """The live event for hosts just seen. Called after the ingest commit, so it is sent directly."""
    hosts = [Host(organization_id=organization_id, public_id=public_id, name=name, last_seen_at=when)
             for public_id, name in Host.objects.filter(organization_id=organization_id, pk__in=host_ids)
             .values_list("public_id", "name")]
    if hosts:
        broadcast_hosts_update(organization_id, {"hosts": [host_payload(host, when) for host in hosts]})
