"""Prometheus remote_write door, replaying the bodies Prometheus 2.42 really sent."""

from __future__ import annotations

import json
import time
from typing import Any

import cramjam
import pytest

from apps.metrics.models import MetricFamily, Series
from tests.metrics.factories import FIXTURES, fixture_bytes, fixture_headers, post, sample_count

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _wide_time_window(settings: Any) -> None:
    # The fixtures were captured on 2026-11-21; keep them inside the accepted window whatever the clock says.
    settings.FIBERSTACK_INGEST_MAX_PAST_S = 20 * 365 * 86400
    settings.FIBERSTACK_INGEST_MAX_FUTURE_S = 20 * 365 * 86400


def decoded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def expected_series() -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    out = {}
    for series in decoded("prom_rw_01.decoded.json")["timeseries"]:
        labels = {label["name"]: label["value"] for label in series["labels"]}
        name = labels.pop("__name__")
        out[(name, tuple(sorted(labels.items())))] = len(series["samples"])
    return out


@pytest.mark.parametrize("path", ["/api/v1/prom/write", "/api/v1/write"])
def test_remote_write_fixture_stores_every_sample_with_its_labels(path: str, org: Any, write_token: str) -> None:
    response = post(path, fixture_bytes("prom_rw_01.snappy.pb"), token=write_token,
                    **fixture_headers("prom_rw_01.headers.json"))
    assert response.status_code == 204, response.content
    expected = expected_series()
    assert sample_count(org) == sum(expected.values()) == 500
    stored = {(s.name, tuple(sorted(s.labels.items()))) for s in Series.objects.for_org(org)}
    assert stored == set(expected)
    one = Series.objects.get(organization=org, name="go_gc_duration_seconds", labels__quantile="0")
    assert one.labels == {"instance": "127.0.0.1:58100", "job": "node", "lab": "peers", "quantile": "0"}
    assert one.host.name == "127.0.0.1"  # instance with the port stripped


def test_metadata_only_request_stores_families_and_later_series_inherit_them(org: Any, write_token: str) -> None:
    response = post("/api/v1/prom/write", fixture_bytes("prom_rw_metadata_01.snappy.pb"), token=write_token,
                    **fixture_headers("prom_rw_metadata_01.headers.json"))
    assert response.status_code == 204, response.content
    metadata = decoded("prom_rw_metadata_01.decoded.json")["metadata"]
    assert MetricFamily.objects.for_org(org).count() == len({m["metricFamilyName"] for m in metadata}) == 283
    family = MetricFamily.objects.get(organization=org, name="node_memory_Hugetlb_bytes")
    assert (family.type, family.help) == ("gauge", "Memory information field Hugetlb_bytes.")
    assert sample_count(org) == 0

    post("/api/v1/prom/write", fixture_bytes("prom_rw_01.snappy.pb"), token=write_token,
         **fixture_headers("prom_rw_01.headers.json"))
    by_name = {m["metricFamilyName"]: m for m in metadata}
    typed = Series.objects.for_org(org).exclude(type="")
    assert typed.exists()
    for series in typed:
        assert series.help == by_name[series.name]["help"]


def test_metadata_updates_existing_series(org: Any, write_token: str) -> None:
    post("/api/v1/prom/write", fixture_bytes("prom_rw_01.snappy.pb"), token=write_token,
         **fixture_headers("prom_rw_01.headers.json"))
    assert not Series.objects.for_org(org).exclude(help="").exists()
    post("/api/v1/prom/write", fixture_bytes("prom_rw_metadata_01.snappy.pb"), token=write_token,
         **fixture_headers("prom_rw_metadata_01.headers.json"))
    families = set(MetricFamily.objects.for_org(org).values_list("name", flat=True))
    described = Series.objects.for_org(org).filter(name__in=families)
    assert described.exists()
    assert not described.filter(help="").exists()


def test_invalid_snappy_is_a_400_naming_the_problem(write_token: str) -> None:
    response = post("/api/v1/prom/write", b"\x05not snappy", token=write_token, CONTENT_TYPE="application/x-protobuf",
                    HTTP_CONTENT_ENCODING="snappy")
    assert response.status_code == 400
    assert "snappy" in response.json()["error"]


def test_snappy_bomb_is_refused_by_its_declared_length(settings: Any, write_token: str) -> None:
    settings.FIBERSTACK_INGEST_MAX_DECODED_BYTES = 1000
    body = bytes(cramjam.snappy.compress_raw(b"\x00" * 100_000))
    response = post("/api/v1/prom/write", body, token=write_token, CONTENT_TYPE="application/x-protobuf",
                    HTTP_CONTENT_ENCODING="snappy")
    assert response.status_code == 413
    assert response.json()["limit"] == 1000


def test_partial_remote_write_keeps_good_series(org: Any, write_token: str) -> None:
    from apps.metrics.ingest.prometheus import Label, Sample, TimeSeries, WriteRequest

    now_ms = int(time.time() * 1000)
    request = WriteRequest()
    good = TimeSeries()
    good.labels.extend([Label(name="__name__", value="up").SerializeToString(),
                        Label(name="job", value="x").SerializeToString()])
    good.samples.extend([Sample(value=1.0, timestamp=now_ms)])
    bad = TimeSeries()
    bad.labels.extend([Label(name="__name__", value="bad-name").SerializeToString(),
                       Label(name="job", value="x").SerializeToString()])
    bad.samples.extend([Sample(value=1.0, timestamp=now_ms)])
    request.timeseries.extend([good, bad])
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    response = post("/api/v1/prom/write", body, token=write_token, CONTENT_TYPE="application/x-protobuf",
                    HTTP_CONTENT_ENCODING="snappy")
    assert response.status_code == 400
    data = response.json()
    assert data["accepted"] == 1
    assert data["rejected"][0]["location"] == "timeseries 1"
    assert sample_count(org, "up") == 1


@pytest.mark.parametrize("field", ["metric_family_name", "help", "unit"])
def test_metadata_that_is_not_utf8_costs_that_entry_not_the_body(field: str, org: Any, write_token: str) -> None:
    """Protobuf refuses a string field that is not UTF-8, which made one bad HELP text (Prometheus, in Go,
    sends exporters' bytes as they are) a 400 for the whole body: every sample of it dropped."""
    from apps.metrics.ingest.prometheus import Label, MetricMetadataMessage, Sample, TimeSeries, WriteRequest

    request = WriteRequest()
    series = TimeSeries()
    series.labels.extend([Label(name="__name__", value="up").SerializeToString()])
    series.samples.extend([Sample(value=1.0, timestamp=int(time.time() * 1000))])
    request.timeseries.append(series)
    good = {"metric_family_name": b"up", "help": b"Up or not.", "unit": b""}
    request.metadata.append(MetricMetadataMessage(type=3, **{**good, field: good[field] + b"\xff\xfe"}))
    request.metadata.append(MetricMetadataMessage(type=3, metric_family_name=b"other", help=b"Fine."))
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    response = post("/api/v1/prom/write", body, token=write_token, CONTENT_TYPE="application/x-protobuf",
                    HTTP_CONTENT_ENCODING="snappy")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["accepted"] == 1
    assert data["rejected"] == [{"location": "metadata 0", "reason": data["rejected"][0]["reason"]}]
    assert "not valid UTF-8" in data["rejected"][0]["reason"]
    assert sample_count(org, "up") == 1
    assert MetricFamily.objects.for_org(org).filter(name="other", help="Fine.").exists()
