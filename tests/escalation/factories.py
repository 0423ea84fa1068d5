"""Factories for on-call schedules. A schedule takes its organization from a SubFactory; layers,
members and overrides stay in their schedule's organization."""

from __future__ import annotations

import datetime as dt

import factory

from apps.escalation.models import OnCallSchedule, ScheduleLayer, ScheduleLayerMember, ScheduleOverride
from tests.organizations.factories import OrganizationFactory


class OnCallScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OnCallSchedule

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"schedule-{n}")
    time_zone = "Europe/Berlin"


class ScheduleLayerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduleLayer
        skip_postgeneration_save = True

    schedule = factory.SubFactory(OnCallScheduleFactory)
    priority = factory.Sequence(lambda n: n)
    rotation = ScheduleLayer.Rotation.DAILY
    start_date = dt.date(2026, 1, 1)
    handoff_time = dt.time(9)

    @factory.post_generation
    def users(self, create: bool, extracted: list | None, **kwargs: object) -> None:
        """`ScheduleLayerFactory(users=[alice, bob])` puts them in rotation in that order."""
        for position, user in enumerate(extracted or []):
            ScheduleLayerMember.objects.create(layer=self, user=user, position=position)


class ScheduleOverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduleOverride

    schedule = factory.SubFactory(OnCallScheduleFactory)
    organization = factory.SelfAttribute("schedule.organization")
    start = dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
    end = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
