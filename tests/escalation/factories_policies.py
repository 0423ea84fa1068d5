"""Factories and helpers for escalation policies and the engine: a rule routed to a policy, contact
methods made through the service (so each has its managed channel), and a recorder of step tasks."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import factory

from apps.alerts.models import AlertRule
from apps.escalation import policy_services
from apps.escalation.models import ContactMethod, EscalationPolicy, RulePolicy
from apps.escalation.policy_services import StepData
from tests.alerts.factories import AlertRuleFactory
from tests.organizations.factories import OrganizationFactory


class EscalationPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationPolicy

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"policy-{n}")


def policy_with_steps(org: Any, steps: Sequence[StepData], **fields: Any) -> EscalationPolicy:
    return policy_services.create_policy(organization=org, name=fields.pop("name", f"p-{id(steps)}"), actor=None,
                                         steps=steps, **fields)


def routed_rule(org: Any, policy: EscalationPolicy, **fields: Any) -> AlertRule:
    rule = AlertRuleFactory(organization=org, **fields)
    RulePolicy.objects.create(organization=org, rule=rule, policy=policy)
    return rule


def contact(org: Any, user: Any, kind: str = "webhook", delay: int = 0, **fields: Any) -> ContactMethod:
    if kind == "email":
        fields.setdefault("address", f"{user.get_username()}@example.com")
    else:
        fields.setdefault("url", f"http://127.0.0.1:9/{user.get_username()}")
    fields.setdefault("verified", True)  # paged in engine tests; verification has its own tests
    return policy_services.create_contact_method(organization=org, user=user, kind=kind, delay_seconds=delay,
                                                 actor=None, **fields)


@dataclass
class StepRecorder:
    """Stands in for `engine._enqueue` in unit tests: records (args, eta) instead of publishing."""

    sent: list[tuple[list[Any], dt.datetime | None]] = field(default_factory=list)

    def __call__(self, args: list[Any], eta: dt.datetime | None, queue: str | None) -> None:
        self.sent.append((list(args), eta))

    def last(self) -> list[Any]:
        return self.sent[-1][0]


def escalating_group(org: Any, policy: EscalationPolicy, alerts: int = 1, **labels: str) -> Any:
    """An alert group of firing alerts whose group escalation is active (rows made directly: for the API
    and admin tests, which need the state, not the engine that makes it)."""
    from apps.alerts.models import AlertGroup
    from apps.alerts.services.grouping import group_key
    from apps.escalation.choices import RunStatus
    from apps.escalation.models import GroupEscalationRun
    from tests.alerts.factories import AlertFactory

    labels = labels or {"team": "storage"}
    rule = AlertRuleFactory(organization=org, group_by=sorted(labels))
    group = AlertGroup.objects.create(organization=org, rule=rule, group_key=group_key(labels), group_labels=labels,
                                      state="firing")
    made = [AlertFactory(organization=org, rule=rule, group=group,
                         labels={"alertname": rule.name, **labels, "host": f"web-{n}"})
            for n in range(alerts)]
    GroupEscalationRun.objects.create(organization=org, group=group, policy=policy, lead_alert=made[0],
                                      status=RunStatus.ACTIVE, active_escalation_id=uuid.uuid4())
    return group
