"""Factories for the inventory. Each takes its organization from a SubFactory; a service's host is
created in the same organization unless one is passed."""

from __future__ import annotations

import factory

from apps.hosts.models import Host, Service
from tests.organizations.factories import OrganizationFactory


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Host

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"host-{n}")
    environment = "production"
    datacenter = "fra1"
    country = "DE"
    tags = factory.LazyFunction(dict)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    organization = factory.SubFactory(OrganizationFactory)
    host = factory.SubFactory(HostFactory, organization=factory.SelfAttribute("..organization"))
    name = factory.Sequence(lambda n: f"service-{n}")
    kind = Service.Kind.HTTP
