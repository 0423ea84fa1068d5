"""Evaluation tasks: the beat tick (``alerts.check_rules``, every 2 s) claims due rules and fans them
out in chunks (``alerts.evaluate_rules``); the ingest hook queues ``alerts.evaluate_rule`` per rule.
Children have ``max_retries=0``: the next tick retries them (their claim's lease ends)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.alerts.evaluation import engine, tick
from apps.alerts.services.defaults import ensure_default_rules, organizations_missing_defaults


@shared_task(name="alerts.check_rules", max_retries=0)
def check_rules() -> str:
    """Give organizations their default rules, claim the due rules and queue them in chunks."""
    created = sum(len(ensure_default_rules(org)) for org in organizations_missing_defaults())
    claimed = tick.claim_due(timezone.now())
    parts = tick.chunks(claimed)
    for ids in parts:
        evaluate_rules.apply_async(args=[ids], expires=tick.LEASE_SECONDS)
    return f"{len(claimed)} rules due, {len(parts)} chunks queued, {created} default rules created"


@shared_task(name="alerts.evaluate_rules", max_retries=0)
def evaluate_rules(rule_ids: list[int]) -> str:
    """Evaluate a chunk of rules (reads batched per organization, metric, window and reducer)."""
    return str(engine.run_rules(rule_ids))


@shared_task(name="alerts.evaluate_rule", max_retries=0)
def evaluate_rule(rule_id: int) -> str:
    """Evaluate one rule now (queued by the ingest hook, coalesced per rule)."""
    return str(engine.run_rule(rule_id))
