"""Rules every organization gets: today "host-down" (an absence rule on any sample from a host). The
tick creates it for organizations that lack it (one anti-join on the unique (organization, system_key)
index), onboarding may call ``ensure_default_rules`` directly. The organization may tune or disable it;
a deleted one comes back on the next tick (disable it to opt out)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.choices import Comparator, Reducer, RuleKind
from apps.alerts.models import AlertRule
from apps.audit.services import record_event

HOST_DOWN = "host-down"
HOST_DOWN_ABSENCE_SECONDS = 120
HOST_DOWN_NAME = "Host down"


def _host_down_fields() -> dict[str, Any]:
    return {
        "kind": RuleKind.ABSENCE, "metric": "", "reducer": Reducer.LAST, "comparator": Comparator.GT,
        "absence_seconds": HOST_DOWN_ABSENCE_SECONDS, "window_seconds": 60, "evaluation_interval_seconds": 10,
        "description": f"A host that was seen has pushed nothing for {HOST_DOWN_ABSENCE_SECONDS} s. "
                       "Created for every organization: tune it or disable it, deleting it brings it back.",
        "labels": {}, "group_by": [],
    }


def ensure_default_rules(organization: Any, *, actor: Any = None) -> list[AlertRule]:
    """Create the organization's missing default rules; returns those created (none when present).
    Safe to call concurrently: the (organization, system_key) unique constraint decides."""
    if AlertRule.objects.filter(organization=organization, system_key=HOST_DOWN).exists():
        return []
    taken = set(AlertRule.objects.filter(organization=organization, name__startswith=HOST_DOWN_NAME)
                .values_list("name", flat=True))
    name = next(n for n in (HOST_DOWN_NAME, *(f"{HOST_DOWN_NAME} ({i})" for i in range(2, 100))) if n not in taken)
    try:
        rule = _create(organization, name, actor)
    except IntegrityError:  # another tick created it first
        return []
    return [rule]


@transaction.atomic
def _create(organization: Any, name: str, actor: Any) -> AlertRule:
    rule = AlertRule.objects.create(organization=organization, name=name, system_key=HOST_DOWN,
                                    next_evaluation_at=timezone.now(), **_host_down_fields())
    record_event(action="alerts.rule.created", actor=actor, organization=organization, target=rule,
                 after={"name": rule.name, "system_key": HOST_DOWN, "kind": rule.kind,
                        "absence_seconds": rule.absence_seconds})
    return rule


def organizations_missing_defaults(limit: int = 100) -> list[Any]:
    """Active organizations without a host-down rule (the tick's cheap check)."""
    from apps.organizations.models import Organization

    having = AlertRule.objects.filter(system_key=HOST_DOWN).values("organization_id")
    return list(Organization.objects.filter(is_active=True).exclude(id__in=having).order_by("id")[:limit])
