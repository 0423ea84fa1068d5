"""Series labels that describe the host (datacenter, region, environment …) fill its inventory when ingest
registers it and follow it when they change; what a payload states about the host explicitly wins; a bad
value is dropped without failing the push; the label table is a setting."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.hosts import services as host_services
from apps.hosts.models import Host
from apps.metrics.services import _host_attributes
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cold_host_caches() -> None:
    host_services._local_ids.clear()
    host_services._local_fingerprints.clear()


def _influx(token: str, tags: str, host: str = "host_1") -> None:
    line = f"cpu,hostname={host}{tags} usage_active=1 {int(time.time())}000000000\n"
    response = post("/api/v1/write?precision=ns", line, token=token)
    assert response.status_code == 204, response.content


def _host(org: Any, name: str = "host_1") -> Host:
    return Host.objects.get(organization=org, name=name)


def test_labels_fill_a_new_hosts_inventory_and_follow_changes(org: Any, write_token: str) -> None:
    _influx(write_token, ",env=staging,dc=fra1,region=eu,country=de,rack=6")
    host = _host(org)
    assert (host.environment, host.datacenter, host.region, host.country) == ("staging", "fra1", "eu", "DE")
    _influx(write_token, ",env=production,dc=fra1,region=eu,country=de")
    assert _host(org).environment == "production"


def test_a_bad_label_value_is_dropped_and_the_push_still_stored(org: Any, write_token: str) -> None:
    _influx(write_token, ",country=Narnia,datacenter=ams1")
    host = _host(org)
    assert (host.country, host.datacenter) == ("", "ams1")


def test_what_the_payload_says_about_the_host_wins_over_labels() -> None:
    labelled = [((("host", "n1"), ("region", "from-label"), ("datacenter", "dc1")), "n1"),
                ((("region", "other"),), None)]
    attributes = _host_attributes(labelled, {"n1": {"region": "from-payload"}, "n2": {"country": "DE"}})
    assert attributes == {"n1": {"region": "from-payload", "datacenter": "dc1"}, "n2": {"country": "DE"}}


def test_the_label_table_is_a_setting(org: Any, write_token: str, settings: Any) -> None:
    settings.FIBERSTACK_HOST_INVENTORY_LABELS = {"service_environment": "environment", "rack": "is_active"}
    _influx(write_token, ",service_environment=test,environment=ignored,rack=0")
    host = _host(org)
    assert host.environment == "test" and host.is_active  # is_active is never an agent's to set
