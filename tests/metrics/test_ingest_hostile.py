"""Hostile clients at every ingest door, end to end: HTTP (Django's test Client, a real write token) ->
parser -> validation -> PostgreSQL, with arbitrary text and bytes in every field.

For every generated request (hypothesis) the reply must be honest:

* the status is below 500, and a 4xx has a JSON body naming where (line, item, timeseries, field,
  host, body) and why;
* the rows added to the raw table for the organization never exceed what the reply says was accepted
  (the JSON body's ``accepted``, or ``X-FiberStack-Accepted`` on a 204; fewer when generated points
  repeat a (series, time) already sent, which replaces the stored value instead of adding a row), and
  none of them is NaN, infinite or outside the time window;
* two well-formed *sentinel* series sent around the hostile ones are stored whenever the body as a
  whole was readable: a bad series never takes the good ones of its batch down with it.

``FIBERSTACK_FUZZ_EXAMPLES`` (default 100) sets the examples per door (a third of it for the second
and third path of a parser already driven through its first path); the named classes of the issue
(NUL in a label value, 250-character and blank hosts, 1,000 labels, +-1e308) have their own
regression tests at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import cramjam
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.metrics.ingest.prometheus import MetricMetadataMessage, Sample, WriteRequest
from tests.metrics.factories import post, sample_count

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FIBERSTACK_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
# The same parser behind another path: the path's own plumbing needs fewer examples.
FUZZ_ALIAS = settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))

SENTINEL_HOST = "sentinel-host"
SENTINEL_NODE = "00000000-0000-4000-8000-00000000abcd"

LINE = re.compile(r"line [1-9][0-9]*")
ITEM = re.compile(r"item [0-9]+(, field '.*'| value [0-9]+)?", re.DOTALL)
SERIES = re.compile(r"(timeseries|metadata) [0-9]+")
AGENT = re.compile(r"field '.*'|host|body", re.DOTALL)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    # Hundreds of requests a second from one token are the point here, not abuse.
    settings.FIBERSTACK_INGEST_RATE_REQUESTS = 0
    settings.FIBERSTACK_INGEST_RATE_SAMPLES = 0


# ---- what every reply must satisfy --------------------------------------------------------------------------


def count_rows(org: Any, name: str | None = None, labels: dict[str, str] | None = None) -> int:
    if labels is None:
        return sample_count(org, name)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
            "WHERE r.organization_id = %s AND r.name = %s AND r.labels @> %s::jsonb",
            [org.pk, name, json.dumps(labels)],
        )
        return int(cursor.fetchone()[0])


def assert_only_sane_rows(org: Any) -> None:
    """What the parsers may never let through, checked where it matters: in the raw table (no NaN or
    infinity under the default "drop" policy, no time outside the accepted window)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
            "WHERE r.organization_id = %s AND (s.value IN ('NaN', 'Infinity', '-Infinity') "
            "OR s.time < clock_timestamp() - interval '7 days 5 minutes' "
            "OR s.time > clock_timestamp() + interval '15 minutes')",
            [org.pk],
        )
        assert cursor.fetchone()[0] == 0


@dataclass
class Sentinel:
    """Where the sentinel samples of one door land, and how many a request carries. A door's two sentinels
    are two series (``pos`` a and b) marked with a nonce fresh for every request: two points of one series
    without a timestamp share the server's receive time, and a repeated (series, time) replaces the stored
    sample rather than adding one."""

    name: str
    labels: dict[str, str] | list[dict[str, str]] | None = None
    count: int = 2

    def rows(self, org: Any) -> int:
        if isinstance(self.labels, list):
            return sum(count_rows(org, self.name, labels) for labels in self.labels)
        return count_rows(org, self.name, self.labels)


def nonce() -> str:
    return uuid.uuid4().hex


def send_and_check(org: Any, sentinel: Sentinel, location: re.Pattern[str], send: Callable[[], Any],
                   *, sentinel_at_risk: Callable[[dict[str, Any]], bool] = lambda body: False) -> Any:
    """POST through ``send`` and assert the reply is honest (module docstring)."""
    total_before, sentinel_before = sample_count(org), sentinel.rows(org)
    response = send()
    assert response.status_code < 500, response.content[:500]
    stored = sample_count(org) - total_before
    assert_only_sane_rows(org)
    if response.status_code == 204:
        assert stored <= int(response["X-FiberStack-Accepted"])
        assert sentinel.rows(org) - sentinel_before == sentinel.count
        return response
    body = response.json()
    assert isinstance(body, dict), body
    if "accepted" not in body:  # the whole request was refused: nothing may have been stored
        assert response.status_code >= 400, body
        assert body["error"].strip() and body["code"], body
        assert stored == 0, body
        return response
    assert stored <= body["accepted"], body
    if body["accepted"] == 0:
        assert stored == 0, body
    if response.status_code >= 400:
        assert body["rejected"], body
    for rejection in body["rejected"]:
        assert location.fullmatch(rejection["location"]), rejection
        assert rejection["reason"].strip(), rejection
    if not sentinel_at_risk(body):
        assert sentinel.rows(org) - sentinel_before == sentinel.count, body
    return response


# ---- hostile ingredients ------------------------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=())  # controls, lone surrogates, private use: everything
SPECIAL = st.sampled_from([*',= "\\\n\r\t#:{}[]\x00\x01\x1b\x1f\x7f\ud800\udfff\ufeff\u2028\xe9\u4e2d', "\\ ", "\\,",
                           "\\=", '\\"', "\\\\"])
WORDISH = st.text(st.sampled_from("abcxyz_09.-:/"), min_size=1, max_size=4)
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=12),
    st.lists(st.one_of(SPECIAL, WORDISH), max_size=6).map("".join),
    st.sampled_from(["", " ", "\t", "h" * 200, "h" * 201, "h" * 250, "x" * 2048, "x" * 2049, "\xe9" * 1025,
                     "v" * 200, "v" * 201, "__name__", "__x", "host", "instance", "[]:1", "[ ]:80", " :9100"]),
)
HOST_LABEL = st.sampled_from(["host", "hostname", "instance", "node_id"])


def now_s() -> float:
    return time.time()


def many_labels(count: int) -> list[tuple[str, str]]:
    return [(f"l{i}", f"v{i}") for i in range(count)]


LABELS = st.one_of(
    st.lists(st.tuples(st.one_of(HOST_LABEL, TEXT), TEXT), max_size=4),
    st.sampled_from([63, 64, 65, 1000]).map(many_labels),
)

# JSON numbers Python cannot produce with json.dumps, spliced into the text: "RAW:<literal>" strings.
RAW_LITERALS = ["1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 30, "NaN", "Infinity", "-Infinity", "1e308",
                "-1e308", "4.9e-324", "1e-400", "-0.0", "18446744073709551616", "9223372036854775808"]
NUMBER = st.one_of(
    st.floats(),  # includes nan, inf, 1e308-sized values
    st.integers(-(2**70), 2**70),
    st.sampled_from([1e308, -1e308, 0, -0.0, 2**63, -(2**63) - 1]),
    st.sampled_from(RAW_LITERALS).map(lambda literal: f"RAW:{literal}"),
)
JSON_JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
EPOCH_S = st.one_of(
    st.floats(-3600.0, 300.0).map(lambda offset: f"NOW:{offset}"),
    NUMBER,
    TEXT,
    st.sampled_from(["2026-11-21T10:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59+23:59", "now"]),
)


def dump_json(document: object, ascii_only: bool) -> bytes:
    """JSON text with the RAW:/NOW: placeholders replaced; lone surrogates become invalid UTF-8 bytes when
    not escaped."""
    text = json.dumps(document, ensure_ascii=ascii_only, allow_nan=True)
    text = re.sub(r'"RAW:([^"]*)"', lambda m: m.group(1), text)
    text = re.sub(r'"NOW:([^"]*)"', lambda m: repr(now_s() + float(m.group(1))), text)
    return text.encode("utf-8", "surrogatepass")


# ---- line protocol ------------------------------------------------------------------------------------------

LP_VALUE = st.one_of(
    st.sampled_from(["1", "1e308", "-1e308", "1e400", "-1e400", "NaN", "inf", "-Infinity", "9223372036854775807i",
                     "9223372036854775808i", "-9223372036854775809i", "18446744073709551615u",
                     "18446744073709551616u", "t", "FALSE", '"s"', '"a\\"b"', "1_0", "", "1e", "0x10"]),
    st.floats().map(repr),
    st.integers(-(2**65), 2**65).map(lambda i: f"{i}i"),
    TEXT,
)
LP_TIMESTAMP = st.one_of(
    st.none(),
    st.integers(-(10**15), 10**11).map(lambda offset: f"NOW:{offset}"),
    st.sampled_from(["0", "-1", str(2**63 - 1), str(2**63), str(-(2**63)), str(-(2**63) - 1), "9" * 30, "1e18"]),
    st.integers(-(2**70), 2**70).map(str),
    TEXT,
)


def lp_escape(text: str, specials: str) -> str:
    out = text.replace("\\", "\\\\")
    for char in specials:
        out = out.replace(char, "\\" + char)
    return out


@st.composite
def lp_lines(draw: st.DrawFn) -> str:
    escape = draw(st.booleans())
    measurement = draw(TEXT)
    tags = draw(LABELS)
    fields = draw(st.lists(st.tuples(st.one_of(st.just("v"), TEXT), LP_VALUE), max_size=3))
    stamp = draw(LP_TIMESTAMP)
    if escape:
        measurement = lp_escape(measurement, ", ")
        tags = [(lp_escape(k, ",= "), lp_escape(v, ",= ")) for k, v in tags]
        fields = [(lp_escape(k, ",= "), v) for k, v in fields]
    line = measurement + "".join(f",{k}={v}" for k, v in tags)
    line += " " + ",".join(f"{k}={v}" for k, v in fields)
    if stamp is not None:
        if stamp.startswith("NOW:"):
            stamp = str(time.time_ns() + int(stamp[4:]))
        line += " " + stamp
    return line


def lp_sentinel(mark: str, pos: str) -> str:
    return f"zzsentinel,host={SENTINEL_HOST},nonce={mark},pos={pos} v=1"


LP_BODIES = st.tuples(st.lists(lp_lines(), min_size=1, max_size=3), st.binary(max_size=6), st.booleans())


@pytest.mark.parametrize("path", ["/write", "/api/v2/write", "/api/v1/write"])
def test_line_protocol_doors_answer_honestly(path: str, org: Any, write_token: str) -> None:
    @(FUZZ if path == "/write" else FUZZ_ALIAS)
    @given(LP_BODIES, st.sampled_from(["", "ns", "us", "ms", "s"]))
    def check(parts: tuple[list[str], bytes, bool], precision: str) -> None:
        lines, junk, gz = parts
        mark = nonce()
        sentinel = Sentinel("zzsentinel_v", {"nonce": mark})
        body = b"\n".join([lp_sentinel(mark, "a").encode(),
                           *(line.encode("utf-8", "surrogatepass") for line in lines)])
        body += junk + b"\n" + lp_sentinel(mark, "b").encode()
        meta = {"HTTP_CONTENT_ENCODING": "gzip"} if gz else {}
        send_and_check(org, sentinel, LINE, lambda: post(f"{path}?precision={precision}",
                                                         gzip.compress(body) if gz else body,
                                                         token=write_token, **meta))

    check()


# ---- remote_write -------------------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def raw_label(name: bytes, value: bytes) -> bytes:
    """A Label message written by hand: the generated classes refuse invalid UTF-8, a hostile client does not."""
    return b"\x0a" + _varint(len(name)) + name + b"\x12" + _varint(len(value)) + value


RAW_TEXT = st.one_of(TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=12))
PROM_LABELS = st.one_of(
    st.lists(st.tuples(st.one_of(st.sampled_from([b"__name__", b"host", b"instance", b"job"]), RAW_TEXT),
                       RAW_TEXT), max_size=5),
    st.sampled_from([64, 65, 1000]).map(
        lambda n: [(b"__name__", b"many")] + [(k.encode(), v.encode()) for k, v in many_labels(n)]),
)
PROM_SAMPLES = st.lists(
    st.tuples(
        st.one_of(st.floats(), st.sampled_from([1e308, -1e308, float("inf"), float("nan")])),
        st.one_of(st.integers(-(10**12), 10**8).map(lambda offset: f"NOW:{offset}"),
                  st.integers(-(2**63), 2**63 - 1)),
    ),
    max_size=3,
)
PLAIN_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(["x" * 300, "ms\x00"])
PROM_METADATA = st.lists(st.tuples(PLAIN_TEXT, st.integers(-1, 9), PLAIN_TEXT, PLAIN_TEXT), max_size=2)


def prom_sentinel(request: Any, mark: str = "case", pos: str = "a") -> None:
    series = request.timeseries.add()
    series.labels.extend([raw_label(b"__name__", b"zzsentinel"), raw_label(b"host", SENTINEL_HOST.encode()),
                          raw_label(b"nonce", mark.encode()), raw_label(b"pos", pos.encode())])
    series.samples.append(Sample(value=1.0, timestamp=int(now_s() * 1000)))


@pytest.mark.parametrize(("path", "meta"), [
    ("/api/v1/prom/write", {}),
    ("/api/v1/write", {"HTTP_X_PROMETHEUS_REMOTE_WRITE_VERSION": "0.1.0"}),
])
def test_remote_write_doors_answer_honestly(path: str, meta: dict[str, str], org: Any, write_token: str) -> None:
    @(FUZZ if path == "/api/v1/prom/write" else FUZZ_ALIAS)
    @given(st.lists(st.tuples(PROM_LABELS, PROM_SAMPLES), min_size=1, max_size=3), PROM_METADATA)
    def check(series: list[tuple[list[tuple[bytes, bytes]], list[tuple[float, int | str]]]],
              metadata: list[tuple[str, int, str, str]]) -> None:
        request = WriteRequest()
        mark = nonce()
        sentinel = Sentinel("zzsentinel", {"nonce": mark})
        prom_sentinel(request, mark, "a")
        for labels, samples in series:
            timeseries = request.timeseries.add()
            timeseries.labels.extend(raw_label(name, value) for name, value in labels)
            for value, stamp in samples:
                t = int(now_s() * 1000) + int(stamp[4:]) if isinstance(stamp, str) else stamp
                timeseries.samples.append(Sample(value=value, timestamp=max(min(t, 2**63 - 1), -(2**63))))
        prom_sentinel(request, mark, "b")
        for name, kind, help_text, unit in metadata:
            request.metadata.append(MetricMetadataMessage(
                metric_family_name=name.encode("utf-8", "surrogatepass"), type=kind,
                help=help_text.encode("utf-8", "surrogatepass"), unit=unit.encode("utf-8", "surrogatepass")))
        body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
        send_and_check(org, sentinel, SERIES, lambda: post(
            path, body, token=write_token, content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="snappy",
            **meta))

    check()


# ---- collectd -----------------------------------------------------------------------------------------------

COLLECTD_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "host": st.one_of(TEXT, JSON_JUNK),
        "plugin": st.one_of(TEXT, JSON_JUNK),
        "plugin_instance": TEXT,
        "type": st.one_of(TEXT, st.just("gauge")),
        "type_instance": TEXT,
        "values": st.lists(st.one_of(NUMBER, st.none(), TEXT), max_size=3),
        "dstypes": st.lists(st.sampled_from(["gauge", "derive", "counter", "absolute", "GAUGE", ""]), max_size=3),
        "dsnames": st.lists(st.one_of(st.just("value"), TEXT), max_size=3),
        "time": EPOCH_S,
        "interval": NUMBER,
    },
)


def collectd_sentinel() -> dict[str, object]:
    return {"values": [1], "dstypes": ["gauge"], "dsnames": ["value"], "time": f"NOW:{0.0}", "interval": 10,
            "host": SENTINEL_HOST, "plugin": "zzsentinel", "plugin_instance": "", "type": "gauge",
            "type_instance": ""}


def test_collectd_door_answers_honestly(org: Any, write_token: str) -> None:
    sentinel = Sentinel("collectd_zzsentinel_gauge")

    @FUZZ
    @given(st.lists(st.one_of(COLLECTD_ITEM, JSON_JUNK), min_size=1, max_size=3), st.booleans())
    def check(items: list[object], ascii_only: bool) -> None:
        body = dump_json([collectd_sentinel(), *items, collectd_sentinel()], ascii_only)
        send_and_check(org, sentinel, ITEM,
                       lambda: post("/api/v1/collectd", body, token=write_token, content_type="application/json"))

    check()


# ---- FiberStack JSON batch ----------------------------------------------------------------------------------

METRIC_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(TEXT, JSON_JUNK),
        "value": st.one_of(NUMBER, JSON_JUNK),
        "time": st.one_of(EPOCH_S, JSON_JUNK),
        "labels": st.one_of(LABELS.map(dict), JSON_JUNK),
        "host": st.one_of(TEXT, JSON_JUNK),
        "unit": st.one_of(TEXT, JSON_JUNK),
    },
)
METRIC_SENTINEL = {"name": "zzsentinel", "value": 1, "host": SENTINEL_HOST}


def metric_sentinel(mark: str, pos: str) -> dict[str, object]:
    return {**METRIC_SENTINEL, "labels": {"nonce": mark, "pos": pos}}


def test_metrics_json_door_answers_honestly(org: Any, write_token: str) -> None:
    @FUZZ
    @given(st.lists(st.one_of(METRIC_ITEM, JSON_JUNK), min_size=1, max_size=3), st.booleans(), st.booleans())
    def check(items: list[object], wrapped: bool, ascii_only: bool) -> None:
        mark = nonce()
        sentinel = Sentinel("zzsentinel", {"nonce": mark})
        batch = [metric_sentinel(mark, "a"), *items, metric_sentinel(mark, "b")]
        body = dump_json({"metrics": batch} if wrapped else batch, ascii_only)
        send_and_check(org, sentinel, ITEM,
                       lambda: post("/api/v1/metrics", body, token=write_token, content_type="application/json"))

    check()


# ---- probe payload ------------------------------------------------------------------------------------------

PROBE_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "node_id": st.one_of(st.uuids().map(str), TEXT, JSON_JUNK),
        "country": st.one_of(st.just("DE"), TEXT),
        "region": st.one_of(st.just("eu"), TEXT, JSON_JUNK),
        "timestamp": st.one_of(st.just("NOW"), TEXT, JSON_JUNK),
        "latency_ms": NUMBER,
        "uptime_pct": NUMBER,
        "packet_loss": st.one_of(NUMBER, JSON_JUNK),
        "metadata": JSON_JUNK,
    },
)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def test_probe_door_answers_honestly(org: Any, write_token: str) -> None:
    @FUZZ
    @given(st.lists(st.one_of(PROBE_ITEM, JSON_JUNK), min_size=1, max_size=3), st.booleans())
    def check(items: list[object], ascii_only: bool) -> None:
        nodes = [str(uuid.uuid4()), str(uuid.uuid4())]
        sentinel = Sentinel("probe_latency_ms", [{"node_id": node} for node in nodes])
        probes = [{"node_id": node, "country": "DE", "region": "eu", "timestamp": iso_now(), "latency_ms": 1}
                  for node in nodes]
        for item in items:
            if isinstance(item, dict) and item.get("timestamp") == "NOW":
                item["timestamp"] = iso_now()
        body = dump_json([probes[0], *items, probes[1]], ascii_only)
        send_and_check(org, sentinel, ITEM,
                       lambda: post("/api/push", body, token=write_token, content_type="application/json"))

    check()


# ---- agent payload ------------------------------------------------------------------------------------------

AGENT_BODY = st.fixed_dictionaries(
    {"metrics": st.dictionaries(TEXT, st.one_of(NUMBER, JSON_JUNK), max_size=4)},
    optional={
        "labels": st.one_of(LABELS.map(dict), JSON_JUNK),
        "timestamp": st.one_of(EPOCH_S, JSON_JUNK),
        "host_info": JSON_JUNK,
    },
)
# Labels and time are shared by every metric of the payload: when they are refused (as a field, or as an
# out-of-window time named at each metric), so is the sentinel, by name.
_SHARED_FIELDS = ("field 'labels'", "field 'timestamp'", "field 'time'", "field 'zzsentinel'")


def test_agent_door_answers_honestly(org: Any, write_token: str) -> None:
    @FUZZ
    @given(st.one_of(TEXT, st.just("web-1")), AGENT_BODY, st.booleans())
    def check(host: str, document: dict[str, Any], ascii_only: bool) -> None:
        payload = {**document.pop("metrics"), **document, "zzsentinel": 1}
        body = dump_json(payload, ascii_only)
        path = "/api/v1/agents/" + quote(host.encode("utf-8", "surrogatepass"), safe="") + "/metrics"
        if not host or "/" in host:
            # Not a route: the reply is still a JSON 404, never an HTML page.
            response = post(path, body, token=write_token, content_type="application/json")
            assert response.status_code == 404 and response.json()["code"] == "not_found"
            return
        send_and_check(
            org, Sentinel("zzsentinel", count=1), AGENT,
            lambda: post(path, body, token=write_token, content_type="application/json"),
            sentinel_at_risk=lambda reply: any(r["location"] in _SHARED_FIELDS for r in reply["rejected"]),
        )

    check()


# ---- any bytes, any encoding, any door ----------------------------------------------------------------------

DOORS = ["/write", "/api/v2/write", "/api/v1/write", "/api/v1/prom/write", "/api/v1/collectd", "/api/v1/metrics",
         "/api/push", "/api/v1/agents/h/metrics"]


@pytest.mark.parametrize("path", DOORS)
def test_random_bytes_and_encodings_at_every_door(path: str, org: Any, write_token: str) -> None:
    @settings(max_examples=max(EXAMPLES // 4, 10), deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.binary(max_size=300) | st.lists(SPECIAL, max_size=60).map(
               lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
           encoding=st.sampled_from(["", "gzip", "snappy", "br", "identity"]), gz=st.booleans(),
           precision=st.sampled_from(["", "s", "h", "x\x00"]))
    def check(body: bytes, encoding: str, gz: bool, precision: str) -> None:
        before = sample_count(org)
        response = post(f"{path}?precision={quote(precision)}", gzip.compress(body) if gz else body,
                        token=write_token, HTTP_CONTENT_ENCODING=encoding, content_type="application/octet-stream")
        assert response.status_code < 500, response.content[:300]
        stored = sample_count(org) - before
        if response.status_code == 204:
            assert stored == int(response["X-FiberStack-Accepted"])
        else:
            reply = response.json()
            assert stored == reply.get("accepted", 0)
            if response.status_code >= 400:
                assert reply.get("error") or reply.get("rejected"), reply

    check()


# ---- the named classes of the issue, door by door -----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One series: ``host`` goes where each door carries a host, ``labels`` are extra labels."""

    host: str = "web-1"
    labels: tuple[tuple[str, str], ...] = ()
    value: float = 1.0


NUL_LABEL = Case(labels=(("env", "pr\x00d"),))
LONG_HOST = Case(host="h" * 250)
BLANK_HOST = Case(host=" ")
THOUSAND_LABELS = Case(labels=tuple(many_labels(1000)))
HUGE = Case(value=1e308)
NEG_HUGE = Case(value=-1e308)


def lp_body(case: Case) -> tuple[str, bytes, dict[str, str]]:
    tags = "".join(f",{k}={lp_escape(v, ',= ')}" for k, v in (("host", case.host), *case.labels))
    return "/write", f"{lp_sentinel('case', 'a')}\ncase{tags} v={case.value!r}\n".encode(), {}


def prom_body(case: Case) -> tuple[str, bytes, dict[str, str]]:
    request = WriteRequest()
    prom_sentinel(request)
    series = request.timeseries.add()
    series.labels.extend(raw_label(k.encode(), v.encode())
                         for k, v in (("__name__", "case_v"), ("host", case.host), *case.labels))
    series.samples.append(Sample(value=case.value, timestamp=int(now_s() * 1000)))
    return ("/api/v1/prom/write", bytes(cramjam.snappy.compress_raw(request.SerializeToString())),
            {"content_type": "application/x-protobuf", "HTTP_CONTENT_ENCODING": "snappy"})


def json_body(case: Case) -> tuple[str, bytes, dict[str, str]]:
    item = {"name": "case_v", "value": case.value, "host": case.host, "labels": dict(case.labels)}
    return "/api/v1/metrics", dump_json([METRIC_SENTINEL, item], True), {"content_type": "application/json"}


def collectd_body(case: Case) -> tuple[str, bytes, dict[str, str]] | None:
    if len(case.labels) > 1:
        return None  # collectd has three fixed labels
    item = {**collectd_sentinel(), "plugin": "case", "host": case.host, "values": [case.value],
            "type_instance": case.labels[0][1] if case.labels else ""}
    return ("/api/v1/collectd", dump_json([collectd_sentinel(), item], True), {"content_type": "application/json"})


def agent_body(case: Case) -> tuple[str, bytes, dict[str, str]]:
    payload = {"labels": dict(case.labels), "case_v": case.value}
    return (f"/api/v1/agents/{quote(case.host, safe='')}/metrics", dump_json(payload, True),
            {"content_type": "application/json"})


def probe_body(case: Case) -> tuple[str, bytes, dict[str, str]] | None:
    if len(case.labels) > 1 or abs(case.value) > 10_000:
        return None  # fixed labels; latency is 0-10000 ms by definition
    node = SENTINEL_NODE if case.host == "web-1" else case.host
    probe = {"node_id": str(uuid.UUID(int=7)), "country": "DE", "region": "eu", "timestamp": iso_now(),
             "latency_ms": 1}
    item = {**probe, "node_id": node, "region": case.labels[0][1] if case.labels else "eu"}
    return "/api/push", dump_json([probe, item], True), {"content_type": "application/json"}


BUILDERS = {"line protocol": lp_body, "remote_write": prom_body, "JSON": json_body, "collectd": collectd_body,
            "agent": agent_body, "probe": probe_body}
REJECTED = [
    (NUL_LABEL, "control character U+0000", "contains the control character U+0000"),
    (LONG_HOST, "host name is 250 characters long", "must be a UUID"),
    (BLANK_HOST, "host name is blank", "must be a UUID"),
    (THOUSAND_LABELS, "labels; the limit is 64 per series", None),
]


def _cases() -> Iterator[Any]:
    for door, build in BUILDERS.items():
        for case, reason, probe_reason in REJECTED:
            expected = probe_reason if door == "probe" else reason
            if expected is not None and build(case) is not None:
                yield pytest.param(door, case, expected, id=f"{door}-{reason[:24]}")


@pytest.mark.parametrize(("door", "case", "reason"), list(_cases()))
def test_named_hostile_series_get_a_4xx_naming_them(door: str, case: Case, reason: str, org: Any,
                                                     write_token: str) -> None:
    built = BUILDERS[door](case)
    assert built is not None
    path, body, meta = built
    before = sample_count(org)
    response = post(path, body, token=write_token, **meta)
    assert 400 <= response.status_code < 500, response.content[:300]
    reply = response.json()
    assert reason in json.dumps(reply, ensure_ascii=False), reply
    locations = [r["location"] for r in reply.get("rejected", [])] or [reply.get("location")]
    assert all(locations), reply
    # Everything but the hostile series is stored (the agent door's host or labels are the whole payload's).
    assert sample_count(org) - before == reply.get("accepted", 0)
    if door != "agent":
        assert reply["accepted"] >= 1
    assert count_rows(org, "case_v") == 0


@pytest.mark.parametrize("door", [door for door in BUILDERS if door != "probe"])
@pytest.mark.parametrize("value", [1e308, -1e308])
def test_extreme_finite_values_are_stored_exactly(door: str, value: float, org: Any, write_token: str) -> None:
    built = BUILDERS[door](Case(value=value))
    assert built is not None
    path, body, meta = built
    response = post(path, body, token=write_token, **meta)
    assert response.status_code in (200, 204), response.content[:300]
    name = "collectd_case_gauge" if door == "collectd" else "case_v"
    with connection.cursor() as cursor:
        cursor.execute("SELECT s.value FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
                       "WHERE r.organization_id = %s AND r.name = %s", [org.pk, name])
        assert [row[0] for row in cursor.fetchall()] == [value]


@pytest.mark.parametrize(("literal", "expected"), [("1e400", "non_finite"), ("-1e400", "non_finite")])
def test_json_numbers_beyond_a_double_are_dropped_and_counted(literal: str, expected: str, org: Any,
                                                              write_token: str) -> None:
    body = f'[{{"name": "case_v", "value": {literal}}}, {{"name": "ok", "value": 1}}]'.encode()
    response = post("/api/v1/metrics", body, token=write_token, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "rejected": [], "skipped": {expected: 1}}


def test_json_integers_beyond_a_double_are_rejected_by_item(org: Any, write_token: str) -> None:
    body = ('[{"name": "ok", "value": 1}, {"name": "case_v", "value": 1' + "0" * 400 + "}]").encode()
    response = post("/api/v1/metrics", body, token=write_token, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["rejected"] == [{"location": "item 1, field 'value'",
                                            "reason": "is out of the range of a 64-bit float"}]
    assert sample_count(org) == 1


def test_series_limits_are_settings_and_a_change_takes_effect_at_once(org: Any, write_token: str,
                                                                      settings: Any) -> None:
    line = "cpu,host=web-1,region=eu,rack=r1 usage_idle=1"

    def rejection() -> str | None:
        response = post("/write", line, token=write_token)
        return None if response.status_code == 204 else response.json()["rejected"][0]["reason"]

    assert rejection() is None  # the defaults allow it; the validated prefix is now cached
    settings.FIBERSTACK_INGEST_MAX_LABELS = 2
    assert "3 labels; the limit is 2 per series (FIBERSTACK_INGEST_MAX_LABELS)" in (rejection() or "")
    settings.FIBERSTACK_INGEST_MAX_LABELS = 64
    settings.FIBERSTACK_INGEST_MAX_NAME_BYTES = 9
    assert "metric name is 14 bytes long; the limit is 9" in (rejection() or "")
    settings.FIBERSTACK_INGEST_MAX_NAME_BYTES = 10_000  # capped by Series.name (256)
    settings.FIBERSTACK_INGEST_MAX_LABEL_VALUE_BYTES = 2
    assert "label 'rack': value is 2 bytes" not in (rejection() or "")
    assert "label 'host': value is 5 bytes long; the limit is 2" in (rejection() or "")
    settings.FIBERSTACK_INGEST_MAX_LABEL_VALUE_BYTES = 2048
    assert rejection() is None
    long_name = "m" * 300
    response = post("/write", f"{long_name} v=1", token=write_token)
    assert "metric name is 302 bytes long; the limit is 256" in response.json()["rejected"][0]["reason"]
    assert count_rows(org, "cpu_usage_idle") == 2


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


DEEP_BODIES = {
    "/api/v1/metrics": lambda deep: f'[{{"name": "ok", "value": 1}}, {{"name": "m", "value": 1, "labels": {deep}}}]',
    "/api/v1/collectd": lambda deep: dump_json([collectd_sentinel()], True).decode()[:-1] + f", {deep}]",
    "/api/push": lambda deep: (f'[{{"node_id": "{SENTINEL_NODE}", "country": "DE", "region": "eu", '
                               f'"timestamp": "{iso_now()}", "latency_ms": 1, "metadata": {deep}}}]'),
    "/api/v1/agents/web-1/metrics": lambda deep: f'{{"ok": 1, "deep": {deep}, "host_info": {{"os": {deep}}}}}',
}


@pytest.mark.parametrize("path", list(DEEP_BODIES))
@pytest.mark.parametrize("depth", [17, 300, 600, 650, 700, 750, 800, 900, 990, 100_000])
def test_deeply_nested_json_is_refused_by_field_or_body(path: str, depth: int, org: Any, write_token: str) -> None:
    # Around the depth json.loads still accepts, everything that recurses later (json.dumps, JSONField)
    # would overflow the stack: a host_info nested ~700 deep was a RecursionError (500).
    before = sample_count(org)
    response = post(path, DEEP_BODIES[path](nested(depth)), token=write_token, content_type="application/json")
    assert response.status_code < 500
    reply = response.json()
    assert sample_count(org) - before == reply.get("accepted", 0)
    if "accepted" not in reply:
        assert reply["location"] == "body" and "nested too deeply" in reply["reason"]
