"""Factories for maintenance windows (silences: ``SilenceFactory`` in the shared factories). Each takes its
organization from a SubFactory."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from apps.alerts.models import MaintenanceWindow
from tests.organizations.factories import OrganizationFactory


class MaintenanceWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaintenanceWindow
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"maintenance-{n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=5))
    duration_seconds = 3600
    time_zone = "UTC"

    @factory.post_generation
    def hosts(self, create: bool, extracted: list | None, **kwargs: object) -> None:
        if create and extracted:
            self.hosts.set(extracted)

    @factory.post_generation
    def services(self, create: bool, extracted: list | None, **kwargs: object) -> None:
        if create and extracted:
            self.services.set(extracted)
