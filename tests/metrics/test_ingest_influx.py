"""InfluxDB doors: /write (1.x), /api/v2/write (2.x), /api/v1/write, /ping, /query."""

from __future__ import annotations

import base64
import gzip
import time
from typing import Any

import pytest
from django.test import Client

from apps.metrics.models import Series
from tests.metrics.factories import post, sample_count, samples_of

pytestmark = pytest.mark.django_db

NOW_S = int(time.time())


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("path", ["/write", "/api/v2/write", "/api/v1/write"])
def test_line_protocol_is_stored_on_every_alias(path: str, org: Any, write_token: str) -> None:
    body = lines(f"cpu,host=web-1,cpu=cpu0 usage_idle=90.5,usage_user=3i {NOW_S}000000000",
                 f"mem,host=web-1 used=1024i,ok=true {NOW_S}000000000")
    response = post(path, body, token=write_token)
    assert response.status_code == 204, response.content
    assert response["X-Influxdb-Version"] == "1.8.10"
    assert sample_count(org) == 4
    names = set(Series.objects.for_org(org).values_list("name", flat=True))
    assert names == {"cpu_usage_idle", "cpu_usage_user", "mem_used", "mem_ok"}
    series = Series.objects.get(organization=org, name="cpu_usage_idle")
    assert series.labels == {"host": "web-1", "cpu": "cpu0"}
    assert series.host.name == "web-1"
    assert samples_of(series) == [(float(NOW_S), 90.5)]
