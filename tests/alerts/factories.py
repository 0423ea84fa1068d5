"""Factories for alerting. Each takes its organization from a SubFactory; related rows are created in the
same organization unless passed."""

from __future__ import annotations

import hashlib
import json

import factory
from django.utils import timezone

from apps.alerts.choices import AlertState, ChannelKind, RuleKind
from apps.alerts.models import Alert, AlertRule, NotificationChannel, Silence
from tests.organizations.factories import OrganizationFactory


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()


class NotificationChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationChannel

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = ChannelKind.WEBHOOK
    url = "http://127.0.0.1:9/hook"


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"rule-{n}")
    kind = RuleKind.THRESHOLD
    metric = "cpu_usage"
    reducer = "last"
    window_seconds = 60
    comparator = ">"
    critical = 90.0


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    organization = factory.SubFactory(OrganizationFactory)
    rule = factory.SubFactory(AlertRuleFactory, organization=factory.SelfAttribute("..organization"))
    labels = factory.Sequence(lambda n: {"alertname": "cpu", "host": f"host-{n}", "severity": "critical"})
    fingerprint = factory.LazyAttribute(lambda o: fingerprint(o.labels))
    state = AlertState.FIRING
    severity = "critical"
    value = 95.0
    threshold = 90.0
    started_at = factory.LazyFunction(timezone.now)


class SilenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Silence

    organization = factory.SubFactory(OrganizationFactory)
    matchers = factory.LazyFunction(lambda: [{"name": "alertname", "op": "=", "value": "cpu"}])
    starts_at = factory.LazyFunction(timezone.now)
    ends_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(hours=1))
