"""Factories for the alerting pages' ledger rows: alert events, notifications and delivery attempts (the
lifecycle and delivery create them in production; the page tests only need them to exist)."""

from __future__ import annotations

import factory
from django.utils import timezone

from apps.alerts.choices import NotificationKind
from apps.alerts.models import AlertEvent, DeliveryAttempt, Notification
from tests.alerts.factories import AlertFactory, NotificationChannelFactory


class AlertEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertEvent

    alert = factory.SubFactory(AlertFactory)
    organization = factory.SelfAttribute("alert.organization")
    from_state = "pending"
    to_state = "firing"
    time = factory.LazyFunction(timezone.now)
    value = 95.0
    threshold = 90.0


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    alert = factory.SubFactory(AlertFactory)
    organization = factory.SelfAttribute("alert.organization")
    channel = factory.SubFactory(NotificationChannelFactory, organization=factory.SelfAttribute("..organization"))
    kind = NotificationKind.FIRING


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    notification = factory.SubFactory(NotificationFactory)
    number = factory.Sequence(lambda n: n + 1)
