"""The beat tick's claim: due rules are taken by one compare-and-set statement that moves their
``next_evaluation_at`` a lease ahead, so a second tick (or a second beat) never dispatches them again
while the first dispatch is queued or running; ``run_rules`` then sets the real next time. A claim
whose worker died simply falls due again when the lease ends."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction

from apps.alerts.choices import RuleKind
from apps.alerts.models import AlertRule

#: How long a claimed rule stays claimed when its evaluation never reports back.
LEASE_SECONDS = 30


def tick_limit() -> int:
    return int(getattr(settings, "FIBERSTACK_ALERTS_TICK_LIMIT", 20_000))


def chunk_size() -> int:
    return int(getattr(settings, "FIBERSTACK_ALERTS_EVALUATION_CHUNK", 1_000))


def claim_due(now: dt.datetime, limit: int | None = None) -> list[tuple[int, int, str]]:
    """(id, organization id, metric) of at most ``limit`` due enabled rules, oldest due first; a rule
    never evaluated (``next_evaluation_at`` NULL: just created) is due at once; ``external`` rules (inbound
    integrations) never are. Uses alerts_rule_due_idx."""
    table = AlertRule._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} SET next_evaluation_at = %(lease)s
            WHERE id IN (SELECT id FROM {table}
                         WHERE enabled AND kind <> %(external)s
                           AND (next_evaluation_at <= %(now)s OR next_evaluation_at IS NULL)
                         ORDER BY next_evaluation_at NULLS FIRST LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
            RETURNING id, organization_id, metric""",  # noqa: S608
            {"lease": now + dt.timedelta(seconds=LEASE_SECONDS), "now": now, "limit": limit or tick_limit(),
             "external": RuleKind.EXTERNAL.value})
        return cursor.fetchall()


def chunks(claimed: list[tuple[int, int, str]], size: int | None = None) -> list[list[int]]:
    """Rule ids in chunks, rules of one (organization, metric) kept together so each chunk's reads batch."""
    size = size or chunk_size()
    ordered = [row[0] for row in sorted(claimed, key=lambda row: (row[1], row[2], row[0]))]
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]
