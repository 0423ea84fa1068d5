"""Filebeat, Vector and Fluent Bit cannot be installed here (none is packaged in Debian, and only the PyPI,
Debian and npm registries are reachable), so each test replays the exact requests the shipper's
Elasticsearch output makes -- method, path and query, headers, gzip, action lines, data stream names --
as read in its source, and asserts the replies pass the checks that source applies to them. rsyslog and
syslog-ng run for real (test_rsyslog.py, test_syslog_ng.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.logs.conftest import basic, search

pytestmark = pytest.mark.django_db


def ndjson(*lines: dict[str, Any]) -> bytes:
    return ("\n".join(json.dumps(line, separators=(",", ":")) for line in lines) + "\n").encode()


def now_iso() -> str:
    return timezone.now().astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def beat_version_check(version: str, beat: str) -> bool:
    """libbeat's ``esVersion.LessThanMajorMinor(beatVersion)`` refusal, inverted: True when accepted."""
    es_major, es_minor = (int(part) for part in version.split(".")[:2])
    beat_major, beat_minor = (int(part) for part in beat.split(".")[:2])
    return (es_major, es_minor) >= (beat_major, beat_minor)


def test_filebeat_8(client: Client, write_token: str, read_token: str) -> None:
    """elastic/beats libbeat/esleg/eslegclient/connection.go (``Ping``: GET <url> with Accept:
    application/json, reads ``version.number``), libbeat/cmd/instance/beat.go (refuses an Elasticsearch
    whose major.minor is older than the Beat's), eslegclient/enc.go (gzip encoder: Content-Type
    application/json; charset=UTF-8 + Content-Encoding: gzip), libbeat/outputs/elasticsearch/client.go
    (``create`` actions from 7.5 on, POST /_bulk?filter_path=errors,items.*.error,items.*.status, every
    item status < 300 is acknowledged, 409 a duplicate, others retried or dropped)."""
    agent = "Elastic-filebeat/8.15.3 (linux; amd64; 4d44a3f2; 2024-10-15 14:06:27 +0000 UTC)"
    auth = basic(write_token, "filebeat")
    ping = client.get("/", HTTP_ACCEPT="application/json", HTTP_USER_AGENT=agent, HTTP_AUTHORIZATION=auth)
    assert ping.status_code == 200
    version = json.loads(ping.content)["version"]["number"]
    assert beat_version_check(version, "8.15.3"), version  # ErrTooOld otherwise

    event = {"@timestamp": now_iso(), "message": "GET /health 200", "log": {"file": {"path": "/var/log/app.log"},
                                                                           "offset": 1234},
             "input": {"type": "filestream"}, "host": {"name": "web-7", "hostname": "web-7"},
             "agent": {"type": "filebeat", "version": "8.15.3", "name": "web-7"}, "ecs": {"version": "8.0.0"}}
    body = gzip.compress(ndjson({"create": {"_index": "filebeat-8.15.3"}}, event,
                                {"create": {"_index": "filebeat-8.15.3"}}, {**event, "message": "second"}))
    # generic(): post() would re-encode a body declared with a charset, and this one is gzip.
    response = client.generic("POST", "/_bulk?filter_path=errors,items.*.error,items.*.status", data=body,
                           content_type="application/json; charset=UTF-8", HTTP_CONTENT_ENCODING="gzip",
                           HTTP_ACCEPT="application/json", HTTP_USER_AGENT=agent, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200  # bulkCollectPublishFails: anything else retries the whole batch
    reply = json.loads(response.content)
    assert reply == {"errors": False, "items": [{"create": {"status": 201}}, {"create": {"status": 201}}]}
    found = search(client, read_token, host="web-7").json()["results"]
    assert sorted(e["message"] for e in found) == ["GET /health 200", "second"]
    assert found[0]["context"]["log"]["file"]["path"] == "/var/log/app.log"


def test_an_older_beat_gets_the_configured_version(client: Client, write_token: str) -> None:
    reply = client.get("/", HTTP_USER_AGENT="Elastic-filebeat/7.17.25 (linux; amd64)").json()
    assert reply["version"]["number"] == "8.11.0"


def test_vector(client: Client, write_token: str, read_token: str) -> None:
    """vectordotdev/vector src/sinks/elasticsearch/common.rs: ``healthcheck`` (GET /_cluster/health, any
    status but 200 fails it), ``get_version`` for ``api_version = "auto"`` (GET / and the major of
    ``version.number``; >= 7 suppresses ``_type``), the bulk URI ``/_bulk?timeout=60s``; service.rs sends
    Content-Type application/x-ndjson and, with ``compression = "gzip"``, Content-Encoding gzip; in
    ``mode = "data_stream"`` the action is ``create`` into ``logs-generic-default``."""
    auth = basic(write_token, "vector")
    agent = "Vector/0.43.1 (x86_64-unknown-linux-gnu 2f0c3a4 2024-12-10 18:10:12.386745683)"
    health = client.get("/_cluster/health", HTTP_AUTHORIZATION=auth, HTTP_USER_AGENT=agent)
    assert health.status_code == 200
    root = client.get("/", HTTP_AUTHORIZATION=auth, HTTP_USER_AGENT=agent)
    assert int(json.loads(root.content)["version"]["number"].split(".")[0]) == 8

    doc = {"@timestamp": now_iso(), "message": "upstream timed out", "host": "lb-1", "source_type": "file",
           "file": "/var/log/nginx/error.log",
           "data_stream": {"type": "logs", "dataset": "generic", "namespace": "default"}}
    body = gzip.compress(ndjson({"create": {"_index": "logs-generic-default"}}, doc))
    response = client.post("/_bulk?timeout=60s", data=body, content_type="application/x-ndjson",
                           HTTP_CONTENT_ENCODING="gzip", HTTP_AUTHORIZATION=auth, HTTP_USER_AGENT=agent)
    assert response.status_code == 200
    reply = json.loads(response.content)
    assert reply["errors"] is False and reply["items"][0]["create"]["status"] == 201
    assert reply["items"][0]["create"]["_index"] == "logs-generic-default"
    found = search(client, read_token, host="lb-1").json()["results"]
    assert [e["message"] for e in found] == ["upstream timed out"]


@pytest.mark.parametrize("suppress_type_name", [False, True])
def test_fluent_bit(client: Client, write_token: str, read_token: str, suppress_type_name: bool) -> None:
    """fluent/fluent-bit plugins/out_es/es.c: ``cb_es_flush`` POSTs to /_bulk with User-Agent Fluent-Bit,
    Content-Type application/x-ndjson, basic auth from HTTP_User/HTTP_Passwd and, with ``Compress gzip``,
    Content-Encoding gzip; the action is ``create`` (``Write_Operation``) with ``_type: _doc`` unless
    ``Suppress_Type_Name On``. A reply other than 200/201 is retried; ``elasticsearch_error_check`` needs
    a map whose ``errors`` is a boolean false, or items that are one-key maps with integer ``status``;
    a reply larger than ``Buffer_Size`` is matched on the literal ``"errors":false,"items":[``."""
    meta: dict[str, Any] = {"_index": "fluent-bit"}
    if not suppress_type_name:
        meta["_type"] = "_doc"
    records = [{"@timestamp": now_iso(), "log": f"kubelet line {n}", "stream": "stderr",
                "kubernetes": {"pod_name": "api-5d9f", "namespace_name": "prod", "host": "node-3"},
                "hostname": "node-3"} for n in range(3)]
    lines = [part for record in records for part in ({"create": meta}, record)]
    response = client.post("/_bulk", data=gzip.compress(ndjson(*lines)), content_type="application/x-ndjson",
                           HTTP_CONTENT_ENCODING="gzip", HTTP_USER_AGENT="Fluent-Bit",
                           HTTP_AUTHORIZATION=basic(write_token, "fluent"))
    assert response.status_code in (200, 201)
    assert b'"errors":false,"items":[' in response.content
    reply = json.loads(response.content)
    assert reply["errors"] is False
    for item in reply["items"]:
        assert len(item) == 1 and isinstance(next(iter(item.values()))["status"], int)
    found = search(client, read_token, host="node-3").json()["results"]
    assert sorted(e["message"] for e in found) == [f"kubelet line {n}" for n in range(3)]


def test_fluent_bit_without_logstash_format_sends_a_float_date(client: Client, write_token: str,
                                                               read_token: str) -> None:
    """es.c without ``Logstash_Format`` appends the record time as ``date``: epoch seconds as a double."""
    when = timezone.now() - dt.timedelta(minutes=5)
    body = ndjson({"create": {"_index": "fluent-bit", "_type": "_doc"}},
                  {"date": when.timestamp(), "log": "with a float date", "hostname": "node-4"})
    response = client.post("/_bulk", data=body, content_type="application/x-ndjson",
                           HTTP_AUTHORIZATION=basic(write_token, "fluent"))
    assert json.loads(response.content)["errors"] is False
    (entry,) = search(client, read_token, host="node-4").json()["results"]
    stored = dt.datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert abs((stored - when).total_seconds()) < 0.01


def test_item_failures_keep_the_shapes_the_shippers_parse(client: Client, write_token: str) -> None:
    """A refused line: its item has a 4xx status (Filebeat drops it rather than retrying it forever; Fluent
    Bit and Vector see ``errors: true``), the others 201."""
    body = ndjson({"create": {"_index": "logs-generic-default"}}, {"message": "fine"},
                  {"create": {"_index": "logs-generic-default"}}, {"message": "bad", "level": "purple"})
    response = client.post("/_bulk?filter_path=errors,items.*.error,items.*.status", data=body,
                           content_type="application/x-ndjson", HTTP_AUTHORIZATION=basic(write_token))
    reply = json.loads(response.content)
    assert reply["errors"] is True
    assert reply["items"][0] == {"create": {"status": 201}}
    failed = reply["items"][1]["create"]
    assert failed["status"] == 400 and "level" in failed["error"]["reason"]
