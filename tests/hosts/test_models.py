"""Host validation (country, coordinates, tags), derived status and the database constraints."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from apps.hosts.models import Host, ServiceDependency
from apps.hosts.validators import validate_health_check_target
from tests.hosts.factories import HostFactory, ServiceFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("country", ["DE", "US", "BR", "ZW", ""])
def test_valid_country_codes_pass(org, country):
    Host(organization=org, name="h", country=country).full_clean()


@pytest.mark.parametrize("country", ["XX", "de", "UK", "EU", "D"])
def test_unknown_country_codes_are_rejected(org, country):
    with pytest.raises(ValidationError) as exc:
        Host(organization=org, name="h", country=country).full_clean()
    assert "country" in exc.value.message_dict


@pytest.mark.parametrize(("lat", "lon", "bad"), [(90.5, 0, "latitude"), (-91, 0, "latitude"),
                                                  (0, 180.1, "longitude"), (0, -181, "longitude")])
def test_coordinates_out_of_range_are_rejected(org, lat, lon, bad):
    with pytest.raises(ValidationError) as exc:
        Host(organization=org, name="h", latitude=lat, longitude=lon).full_clean()
    assert bad in exc.value.message_dict


def test_coordinates_are_also_checked_by_the_database(org):
    with pytest.raises(IntegrityError), transaction.atomic():
        Host.objects.create(organization=org, name="h", latitude=95)


@pytest.mark.parametrize("tags", [[], "x", {"a": 1}, {"": "x"}, {"a:b": "x"}, {"with space": "x"},
                                  {f"k{i}": "v" for i in range(65)}, {"a": "x" * 256}])
def test_bad_tags_are_rejected(org, tags):
    with pytest.raises(ValidationError) as exc:
        Host(organization=org, name="h", tags=tags).full_clean()
    assert "tags" in exc.value.message_dict


def test_tags_must_be_an_object_in_the_database(org):
    with pytest.raises(IntegrityError), transaction.atomic():
        Host.objects.create(organization=org, name="h", tags=["a"])


def test_host_names_are_unique_per_organization(org, other_org):
    HostFactory(organization=org, name="web-1")
    HostFactory(organization=other_org, name="web-1")
    with pytest.raises(ValidationError):
        Host(organization=org, name="web-1").full_clean()


@pytest.mark.parametrize(("last_seen", "expected"), [
    (None, "unknown"),
    (NOW - datetime.timedelta(seconds=10), "up"),
    (NOW - datetime.timedelta(seconds=299), "up"),
    (NOW - datetime.timedelta(seconds=301), "down"),
])
def test_status_is_derived_from_last_seen(org, last_seen, expected):
    host = HostFactory(organization=org, last_seen_at=last_seen)
    assert host.status(NOW) == expected
    assert Host.objects.with_status(NOW).get(pk=host.pk).current_status == expected
    assert list(Host.objects.filter_status(expected, NOW)) == [host]


@override_settings(FIBERSTACK_HOST_STALE_AFTER_SECONDS=30)
def test_staleness_threshold_comes_from_settings(org):
    host = HostFactory(organization=org, last_seen_at=NOW - datetime.timedelta(seconds=60))
    assert host.status(NOW) == "down"
    assert Host.objects.with_status(NOW).get().current_status == "down"


def test_status_defaults_to_now(org):
    assert HostFactory(organization=org, last_seen_at=timezone.now()).status() == "up"


def test_service_host_must_be_in_the_same_organization(org, other_org):
    service = ServiceFactory.build(organization=org, host=HostFactory(organization=other_org))
    with pytest.raises(ValidationError) as exc:
        service.full_clean()
    assert "host" in exc.value.message_dict


@pytest.mark.parametrize("value", ["https://api.example.com/health", "tcp://db:5432", "db.internal:5432",
                                   "10.0.0.1:6379", "[::1]:80", ""])
def test_health_check_accepts_urls_and_host_port(value):
    validate_health_check_target(value)


@pytest.mark.parametrize("value", ["ftp://x.example.com", "db.internal", "db:0", "db:70000", "not a url"])
def test_health_check_rejects_other_values(value):
    with pytest.raises(ValidationError):
        validate_health_check_target(value)


def test_dependency_needs_exactly_one_node_per_side(org):
    host = HostFactory(organization=org)
    service = ServiceFactory(organization=org, host=host)
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceDependency.objects.create(organization=org, upstream_host=host, upstream_service=service,
                                         downstream_service=service)
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceDependency.objects.create(organization=org, downstream_host=host)


def test_dependency_self_loop_and_duplicate_are_refused_by_the_database(org):
    a, b = HostFactory(organization=org), HostFactory(organization=org)
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceDependency.objects.create(organization=org, upstream_host=a, downstream_host=a)
    ServiceDependency.objects.create(organization=org, upstream_host=a, downstream_host=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceDependency.objects.create(organization=org, upstream_host=a, downstream_host=b)


def test_str_names_the_edge(org):
    db = HostFactory(organization=org, name="db-1")
    api = ServiceFactory(organization=org, name="api", host=HostFactory(organization=org, name="web-1"))
    edge = ServiceDependency.objects.create(organization=org, upstream_host=db, downstream_service=api)
    assert str(edge) == "api on web-1 depends on db-1"
