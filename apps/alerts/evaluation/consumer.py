"""The metrics ingest consumer (``FIBERSTACK_INGEST_CONSUMERS``): the rules a committed batch can
answer are queued for evaluation, so a sample reaches its alert in well under the 2 s target instead of
waiting for the tick. It runs after commit in the request's thread, so it stays cheap:

* series id -> (metric name, labels) from a per-process cache (neither ever changes, ids are never
  reused; a miss is one statement for the missing ids), and the names of a batch memoised per set of
  series ids (an agent's requests name the same series every time);
* the organization's enabled rules on those metrics -- plus its host-level absence rules when the batch
  named hosts, which a push may resolve -- in one statement on ``alerts_rule_org_metric_idx``;
* a conservative pre-filter: a rule whose positive equality matchers (``host="web-1"``) no series of the
  batch carries cannot see the batch, so it is not queued (one rule per host on ``cpu`` would otherwise
  queue every host's rule on every host's push). Everything else -- regexes, negations, host filters --
  is left to the evaluation, so the filter may queue too much, never too little;
* one Redis round trip: the hosts' heartbeats (``heartbeats``) and the per-rule coalescing script;
* at most two tasks: the rules due now in one, the trailing runs in another (``alerts.evaluate_rule``
  for a single rule, ``alerts.evaluate_rules`` for several: one run batches their reads).

Coalescing: per rule a "lead" key (SET NX, ``COALESCE_MS``) lets the first batch evaluate at once; a
batch that finds it taken claims the "trailing" key for the lead's remaining time and queues one
evaluation for when it ends; batches finding both taken are covered by that trailing run. So a busy
rule is evaluated at most twice per ``COALESCE_MS`` and every batch within ``COALESCE_MS`` of arriving.
Redis down: every matching rule is queued (fail open); rules that keep raising are left to the tick,
whose backoff applies."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection
from redis.exceptions import NoScriptError

from apps.alerts.choices import RuleKind
from apps.alerts.evaluation import heartbeats
from apps.alerts.models import AlertRule
from apps.core import redis
from apps.hosts.cache_scope import epoch
from apps.metrics.read import QueryError
from apps.metrics.read.select import parse_matchers

logger = logging.getLogger(__name__)

COALESCE_MS = 1000
#: Rules with this many consecutive errors are evaluated by the tick only (which backs off).
ERROR_CUTOFF = 3
_MAX_CACHED = 500_000

# KEYS: lead, trail per rule; ARGV[1]: window in ms. Per rule: 0 = evaluate now, n > 0 = evaluate in n ms
# (trailing run), -1 = already covered.
_COALESCE = """
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[1], 'NX') then
    out[#out + 1] = 0
  else
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 1 then ttl = 1 end
    if redis.call('SET', KEYS[i + 1], '1', 'PX', ttl, 'NX') then out[#out + 1] = ttl else out[#out + 1] = -1 end
  end
end
return out
"""
# What Redis names the script (EVALSHA); SHA-1 is its choice, not a security use.
_COALESCE_SHA = hashlib.sha1(_COALESCE.encode(), usedforsecurity=False).hexdigest()
# database identity -> (organization, series id) -> (name, labels): keyed by organization too, so ids of
# another organization's series never answer (ingest only hands over its own; this keeps it so).
_series: dict[str, dict[tuple[int, int], tuple[str, frozenset[tuple[str, str]]]]] = {}
_lock = threading.Lock()


def series_meta(org_id: int, series_ids: Iterable[int]) -> dict[int, tuple[str, frozenset[tuple[str, str]]]]:
    """series id -> (metric name, label items) for the batch's series (cached per database identity)."""
    scope = epoch()
    cached = _series.get(scope)
    if cached is None:
        with _lock:
            cached = _series.setdefault(scope, {})
    ids = list(series_ids)
    missing = [sid for sid in ids if (org_id, sid) not in cached]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, name, labels::text FROM metrics_series "
                           "WHERE organization_id = %s AND id = ANY(%s)", [org_id, missing])
            found = {(org_id, sid): (name, frozenset(json.loads(labels).items()))
                     for sid, name, labels in cursor.fetchall()}
        with _lock:
            if len(cached) + len(found) > _MAX_CACHED:
                cached.clear()
            cached.update(found)
    return {sid: meta for sid in ids if (meta := cached.get((org_id, sid))) is not None}


BatchSeries = tuple[frozenset[str], tuple[tuple[str, frozenset[tuple[str, str]]], ...]]
# (database identity, organization, a batch's series ids) -> its metric names and (name, labels) per
# series: an agent pushes the same set of series request after request, so that is worked out once per
# set, not per request (a TSBS request names 1,000 series). Ids are never reused, so entries never go stale.
_batches: dict[tuple[str, int, frozenset[int]], BatchSeries] = {}
_MAX_BATCHES = 64


def batch_series(org_id: int, series_ids: Iterable[int]) -> BatchSeries:
    """The metric names of the batch's series and their (name, label items), memoised per set of ids."""
    ids = frozenset(series_ids)
    key = (epoch(), org_id, ids)
    hit = _batches.get(key)
    if hit is not None:
        return hit
    meta = series_meta(org_id, ids)
    found: BatchSeries = (frozenset(name for name, _ in meta.values()), tuple(meta.values()))
    if len(meta) == len(ids):  # an id this organization does not have is looked up again next time
        with _lock:
            if len(_batches) >= _MAX_BATCHES:
                _batches.clear()
            _batches[key] = found
    return found


def metric_names(org_id: int, series_ids: Iterable[int]) -> set[str]:
    """The metric names of the batch's series."""
    return {name for name, _ in series_meta(org_id, series_ids).values()}


def rules_for(org_id: int, names: set[str], hosts_seen: bool) -> list[tuple[int, str, str]]:
    """(id, metric, label_matchers) of the organization's enabled rules on ``names`` (and its host-level
    absence rules when hosts were seen), leaving out rules that keep raising."""
    wanted = sorted(names | {""}) if hosts_seen else sorted(names)
    if not wanted:
        return []
    with connection.cursor() as cursor:
        # One index condition (organization_id, metric = ANY) on alerts_rule_org_metric_idx; the blank
        # metric ("" when hosts were seen) matches host-level absence rules only.
        cursor.execute(
            f"SELECT id, metric, label_matchers FROM {AlertRule._meta.db_table} "  # noqa: S608
            "WHERE organization_id = %s AND enabled AND metric = ANY(%s) AND (metric <> '' OR kind = %s) "
            "AND kind <> %s AND consecutive_errors < %s ORDER BY id",
            [org_id, wanted, RuleKind.ABSENCE.value, RuleKind.EXTERNAL.value, ERROR_CUTOFF])
        return cursor.fetchall()


@functools.lru_cache(maxsize=4096)
def required_labels(label_matchers: str) -> frozenset[tuple[str, str]] | None:
    """The (label, value) pairs a series must carry for the matchers to select it (``label="value"`` with a
    value); None when the matchers do not parse (the evaluation records that error)."""
    try:
        matchers = parse_matchers(label_matchers, "label_matchers") if label_matchers.strip() else []
    except QueryError:
        return None
    return frozenset((m.label, m.value) for m in matchers if m.op == "=" and m.value and m.label != "__name__")


def may_see(metric: str, label_matchers: str, batch_series: Iterable[tuple[str, frozenset[tuple[str, str]]]]) -> bool:
    """Could a rule on ``metric`` with these matchers select one of the batch's series? (conservative)"""
    if not metric:
        return True
    required = required_labels(label_matchers)
    if not required:
        return True
    return any(name == metric and required <= labels for name, labels in batch_series)


def _key(rule_id: int) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:alerts:eval:{epoch()}:{rule_id}"


def coalesce(org_id: int, rule_ids: list[int], hosts: Iterable[int], when: Any) -> list[tuple[int, float]]:
    """(rule id, delay in seconds) to queue; records the hosts' heartbeats in the same round trip.

    The script goes into the pipeline as a bare EVALSHA: redis-py's Script object would make every
    pipeline check SCRIPT EXISTS first, one more round trip per ingest request. Only a server that never
    saw the script (NOSCRIPT, once per server lifetime) costs a load and a second call."""
    try:
        client = redis.client()
        pipe = client.pipeline(transaction=False)
        heartbeats.record_seen(pipe, org_id, hosts, when)
        keys = [k for rid in rule_ids for k in (_key(rid), _key(rid) + ":trail")]
        if rule_ids:
            pipe.evalsha(_COALESCE_SHA, len(keys), *keys, COALESCE_MS)
        replies = pipe.execute(raise_on_error=False)
        if rule_ids and isinstance(replies[-1], NoScriptError):
            client.script_load(_COALESCE)
            replies[-1] = client.evalsha(_COALESCE_SHA, len(keys), *keys, COALESCE_MS)
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors:
            raise errors[0]
    except Exception as exc:
        logger.warning("alert coalescing unavailable, evaluating every matching rule: %s", exc)
        return [(rid, 0.0) for rid in rule_ids]
    if not rule_ids:
        return []
    delays = replies[-1]
    return [(rid, int(ms) / 1000) for rid, ms in zip(rule_ids, delays, strict=True) if int(ms) >= 0]


def enqueue(rule_ids: list[int], delay: float) -> None:
    """One task for ``rule_ids``, ``delay`` seconds from now."""
    from apps.alerts.tasks.evaluation import evaluate_rule, evaluate_rules

    countdown = delay or None
    if len(rule_ids) == 1:
        evaluate_rule.apply_async(args=[rule_ids[0]], countdown=countdown)
    else:
        evaluate_rules.apply_async(args=[rule_ids], countdown=countdown)


def consume(batch: Any) -> None:
    """Ingest consumer: queue evaluation of the rules this batch can answer."""
    names, seen = batch_series(batch.organization_id, batch.latest.keys()) if batch.latest else (frozenset(), ())
    candidates = rules_for(batch.organization_id, set(names), bool(batch.hosts_seen))
    rule_ids = [rid for rid, metric, matchers in candidates if may_see(metric, matchers, seen)]
    delays = coalesce(batch.organization_id, rule_ids, batch.hosts_seen, batch.received_at)
    now = [rid for rid, delay in delays if not delay]
    if now:
        enqueue(now, 0.0)
    trailing = [(rid, delay) for rid, delay in delays if delay]
    if trailing:
        # Each trailing run must start after its rule's lead window; the latest of them covers all.
        enqueue([rid for rid, _ in trailing], max(delay for _, delay in trailing))
