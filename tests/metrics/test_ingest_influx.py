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


def test_partial_write_stores_good_lines_and_names_the_bad_one(org: Any, write_token: str) -> None:
    body = lines(f"cpu,host=a value=1 {NOW_S}", "cpu,host=a value=abc", f"cpu,host=b value=2 {NOW_S}")
    response = post("/write?precision=s", body, token=write_token)
    assert response.status_code == 400
    data = response.json()
    # InfluxDB 1.x wording, so Telegraf's log line is familiar.
    assert data["error"].startswith("partial write: unable to parse 'cpu,host=a value=abc'")
    assert data["error"].endswith("dropped=1")
    assert data["message"] == data["error"]
    assert data["code"] == "invalid"
    assert data["line"] == 2
    assert data["errors"][0]["location"] == "line 2"
    assert data["accepted"] == 2
    assert response["X-Influxdb-Error"].startswith("partial write")
    assert sample_count(org) == 2


def test_all_lines_bad_is_a_plain_parse_error(org: Any, write_token: str) -> None:
    response = post("/write", "not line protocol\n", token=write_token)
    assert response.status_code == 400
    assert response.json()["error"].startswith("unable to parse")
    assert sample_count(org) == 0


def test_string_fields_are_skipped_and_counted_when_there_is_a_body(org: Any, write_token: str) -> None:
    body = lines(f'svc,host=a up=1,msg="hello" {NOW_S}', f"svc,host=a broken {NOW_S}")
    response = post("/write?precision=s", body, token=write_token)
    assert response.status_code == 400
    assert response.json()["skipped"] == {"string_fields": 1}
    assert sample_count(org) == 1


def test_a_successful_write_reports_skipped_fields_in_a_header(org: Any, write_token: str) -> None:
    body = lines(f'svc,host=a up=1,msg="hello",note="x" {NOW_S}', f'svc,host=b up=0,msg="bye" {NOW_S}',
                 f"svc,host=c load=NaN,up=1 {NOW_S}")
    response = post("/write?precision=s", body, token=write_token)
    assert response.status_code == 204, response.content
    assert response["X-FiberStack-Skipped"] == "non_finite=1, string_fields=3"
    assert response.content == b""
    assert sample_count(org) == 3


def test_a_clean_write_has_no_skipped_header(org: Any, write_token: str) -> None:
    response = post("/api/v2/write?precision=s", lines(f"svc,host=a up=1 {NOW_S}"), token=write_token)
    assert response.status_code == 204
    assert "X-FiberStack-Skipped" not in response


def test_a_partial_write_counts_skipped_fields_in_the_body(org: Any, write_token: str) -> None:
    body = lines(f'svc,host=a up=1,msg="hello",note="x" {NOW_S}', f"svc,host=a broken {NOW_S}")
    response = post("/write?precision=s", body, token=write_token)
    assert response.status_code == 400
    data = response.json()
    assert data["skipped"] == {"string_fields": 2}
    assert data["accepted"] == 1
    assert "X-FiberStack-Skipped" not in response


def test_hot_tier_keeps_the_newest_sample_of_an_out_of_order_request(
    org: Any, write_token: str, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.hosts.models import Host
    from apps.metrics import hot

    body = lines(f"cpu,host=web-9 idle=2,user=5 {NOW_S}", f"cpu,host=web-9 idle=1 {NOW_S - 20}",
                 f"cpu,host=web-9 idle=3 {NOW_S - 10}")
    with django_capture_on_commit_callbacks(execute=True):
        response = post("/write?precision=s", body, token=write_token)
    assert response.status_code == 204
    idle = Series.objects.get(organization=org, name="cpu_idle")
    user = Series.objects.get(organization=org, name="cpu_user")
    assert samples_of(idle) == [(float(NOW_S - 20), 1.0), (float(NOW_S - 10), 3.0), (float(NOW_S), 2.0)]
    expected = {idle.id: (float(NOW_S), 2.0), user.id: (float(NOW_S), 5.0)}
    assert hot.latest_values(org.pk, [idle.id, user.id]) == expected
    host = Host.objects.get(organization=org, name="web-9")
    assert hot.latest_for_host(org.pk, host.pk) == expected
    # An older batch afterwards never moves "latest" back.
    with django_capture_on_commit_callbacks(execute=True):
        assert post("/write?precision=s", lines(f"cpu,host=web-9 idle=9 {NOW_S - 30}"),
                    token=write_token).status_code == 204
    assert hot.latest_values(org.pk, [idle.id]) == {idle.id: (float(NOW_S), 2.0)}


# Ids must not contain the time: pytest-xdist workers would collect different tests.
@pytest.mark.parametrize(
    ("precision", "per_second"),
    [("s", 1), ("ms", 1000), ("us", 10**6), ("ns", 10**9), ("n", 10**9), ("u", 10**6), ("", 10**9)],
)
def test_precision_query_parameter(precision: str, per_second: int, org: Any, write_token: str) -> None:
    stamp = NOW_S * per_second
    response = post(f"/write?precision={precision}", f"p,host=a v=1 {stamp}", token=write_token)
    assert response.status_code == 204, response.content
    assert samples_of(Series.objects.get(organization=org, name="p_v")) == [(float(NOW_S), 1.0)]


def test_v2_precision_and_ignored_parameters(org: Any, write_token: str) -> None:
    response = post("/api/v2/write?org=acme&bucket=telegraf&precision=ms", f"p,host=a v=1 {NOW_S * 1000}",
                    HTTP_AUTHORIZATION=f"Token {write_token}")
    assert response.status_code == 204, response.content
    assert sample_count(org) == 1


def test_unsupported_precision_is_400_naming_the_parameter(write_token: str) -> None:
    response = post("/write?precision=h", f"p v=1 {NOW_S}", token=write_token)
    assert response.status_code == 400
    assert response.json()["parameter"] == "precision"


def test_gzip_body(org: Any, write_token: str) -> None:
    body = gzip.compress(lines(*[f"g,host=h{i} v={i} {NOW_S}" for i in range(50)]).encode())
    response = post("/write?precision=s", body, token=write_token, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 204, response.content
    assert sample_count(org) == 50


def test_the_sample_limit_counts_every_line_it_left_unread_as_dropped(settings: Any, org: Any,
                                                                      write_token: str) -> None:
    settings.FIBERSTACK_INGEST_MAX_SAMPLES = 5
    body = lines(*(f"cpu,host=h{i} value={i} {NOW_S}" for i in range(8)), "# a comment is not a line", "")
    response = post("/write?precision=s", body, token=write_token)

    assert response.status_code == 400
    reply = response.json()
    assert reply["accepted"] == 5 == sample_count(org, "cpu_value")
    assert reply["skipped"]["unread_lines"] == 2  # lines 7 and 8; line 6 is the one named in the error
    assert reply["error"].endswith("dropped=3")


def test_oversize_body_is_413_naming_the_limit(settings: Any, org: Any, write_token: str) -> None:
    settings.FIBERSTACK_INGEST_MAX_BODY_BYTES = 100
    response = post("/write?precision=s", lines(*[f"g v={i} {NOW_S}" for i in range(20)]), token=write_token)
    assert response.status_code == 413
    data = response.json()
    assert data["limit"] == 100
    assert "FIBERSTACK_INGEST_MAX_BODY_BYTES" in data["error"]
    assert sample_count(org) == 0


def test_gzip_bomb_is_cut_at_the_decoded_limit(settings: Any, org: Any, write_token: str) -> None:
    settings.FIBERSTACK_INGEST_MAX_DECODED_BYTES = 64 * 1024
    bomb = gzip.compress(b"a" * (50 * 1024 * 1024))  # 50 MiB of output from ~50 KiB
    response = post("/write", bomb, token=write_token, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "FIBERSTACK_INGEST_MAX_DECODED_BYTES" in response.json()["error"]


def test_corrupt_gzip_is_400(write_token: str) -> None:
    response = post("/write", b"\x1f\x8b garbage", token=write_token, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]


def test_rate_limit_answers_429_with_retry_after(settings: Any, org: Any, write_token: str) -> None:
    settings.FIBERSTACK_INGEST_RATE_SAMPLES = 3
    settings.FIBERSTACK_INGEST_RATE_WINDOW = 60  # one window for the whole test, whatever the clock does
    assert post("/write?precision=s", lines(f"r v=1 {NOW_S}", f"r v=2 {NOW_S - 1}"),
                token=write_token).status_code == 204
    response = post("/write?precision=s", lines(f"r v=3 {NOW_S - 2}", f"r v=4 {NOW_S - 3}"), token=write_token)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "rate_limited"
    assert sample_count(org) == 2


def test_request_rate_limit(settings: Any, write_token: str) -> None:
    settings.FIBERSTACK_INGEST_RATE_REQUESTS = 1
    settings.FIBERSTACK_INGEST_RATE_WINDOW = 60
    assert post("/write?precision=s", f"r v=1 {NOW_S}", token=write_token).status_code == 204
    response = post("/write?precision=s", f"r v=1 {NOW_S}", token=write_token)
    assert response.status_code == 429
    assert response.has_header("Retry-After")


@pytest.mark.parametrize("method", ["get", "head"])
def test_ping_needs_no_auth(method: str) -> None:
    response = getattr(Client(), method)("/ping")
    assert response.status_code == 204
    assert response["X-Influxdb-Version"] == "1.8.10"
    assert response["X-Influxdb-Build"] == "OSS"


def test_query_create_database_succeeds_with_or_without_credentials(write_token: str) -> None:
    q = 'CREATE DATABASE "telegraf"'
    assert Client().post("/query", {"q": q}).json() == {"results": [{"statement_id": 0}]}
    response = Client().post("/query", {"q": q}, HTTP_AUTHORIZATION=f"Bearer {write_token}")
    assert response.status_code == 200
    assert Client().get("/query", {"q": q}).status_code == 200


def test_query_other_statements_are_a_clear_400() -> None:
    response = Client().get("/query", {"q": "SELECT * FROM cpu"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("error parsing query")


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_query_with_another_method_is_405_naming_the_allowed_ones(method: str) -> None:
    response = getattr(Client(), method)("/query")
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert response.json()["code"] == "method_not_allowed"


def test_query_with_a_bad_token_is_401() -> None:
    response = Client().post("/query", {"q": "CREATE DATABASE x"}, HTTP_AUTHORIZATION="Bearer fst_nope_nope")
    assert response.status_code == 401


def test_influx_import_exact_requests(org: Any, write_token: str) -> None:
    """`influx -import -path=x -precision=s -username x -password <token>` (InfluxDB 1.6 shell)."""
    auth = "Basic " + base64.b64encode(f"x:{write_token}".encode()).decode()
    client = Client()
    ping = client.get("/ping", HTTP_AUTHORIZATION=auth, HTTP_USER_AGENT="InfluxDBShell/1.6.7~rc0")
    assert ping.status_code == 204
    body = f"cpu,host=imp value=1 {NOW_S}\ncpu,host=imp value=2 {NOW_S + 1}\n".encode()
    response = client.generic("POST", "/write?consistency=all&db=mydb&precision=s&rp=", data=body,
                              content_type="", HTTP_AUTHORIZATION=auth, HTTP_USER_AGENT="InfluxDBShell/1.6.7~rc0")
    assert response.status_code == 204, response.content
    assert sample_count(org, "cpu_value") == 2


def test_query_string_credentials(org: Any, write_token: str) -> None:
    response = post(f"/write?u=x&p={write_token}&precision=s", f"q v=1 {NOW_S}")
    assert response.status_code == 204
    assert sample_count(org) == 1


def test_get_write_is_405(write_token: str) -> None:
    response = Client().get("/write", HTTP_AUTHORIZATION=f"Bearer {write_token}")
    assert response.status_code == 405


def test_empty_body_is_204(org: Any, write_token: str) -> None:
    assert post("/write", b"", token=write_token).status_code == 204


def test_unknown_hosts_with_auto_registration_off_is_422_and_nothing_stored(org: Any, write_token: str) -> None:
    org.auto_register_hosts = False
    org.save()
    response = post("/write?precision=s", lines(f"cpu,host=ghost v=1 {NOW_S}", f"cpu v=1 {NOW_S}"),
                    token=write_token)
    assert response.status_code == 422
    data = response.json()
    assert data["hosts"] == ["ghost"]
    assert "ghost" in data["error"]
    assert sample_count(org) == 0
    assert not Series.objects.for_org(org).exists()


def test_hostless_series_are_fine(org: Any, write_token: str) -> None:
    assert post("/write?precision=s", f"queue depth=3 {NOW_S}", token=write_token).status_code == 204
    assert Series.objects.get(organization=org).host is None
