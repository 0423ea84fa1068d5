"""Parser-only throughput: values/s for each ingest wire format, no HTTP, no database.

    .venv/bin/python bench/parsers.py [--repeat 7] [--only influx,prometheus,...] [--decoders]

Each row parses one representative body ``--repeat`` times in this process and reports values per
second of CPU time (``time.process_time``, so a busy shared machine does not distort it) for
the first parse after clearing every parser cache ("cold": a worker's first request for these series)
and for the best warm parse (steady state: agents resend the same series every interval). The
remote_write rows replay the captured Prometheus 2.42 body from ``tests/fixtures``.
``--decoders`` also times the three remote_write decoding strategies weighed in
``apps/metrics/ingest/prometheus.py``, so the choice written in its docstring can be re-checked.

The target (docs: >= 300k values/s end to end on 2 cores) leaves the line-protocol parser about a third
of the per-value budget, hence its own goal of >= 1M values/s on the TSBS cpu-only line.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cramjam

from apps.metrics.ingest import naming, prometheus, validation
from apps.metrics.ingest.collectd import parse_collectd_json
from apps.metrics.ingest.influx import parse_line_protocol
from apps.metrics.ingest.native_json import (
    parse_agent_payload,
    parse_metrics_json,
    parse_probe_payload,
)
from apps.metrics.ingest.prometheus import parse_remote_write
from apps.metrics.ingest.types import ParseOptions, ParseResult

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
NOW_S = 1_795_305_600
NOW_NS = NOW_S * 10**9
OPTIONS = ParseOptions(now_us=NOW_S * 10**6, max_past_s=30 * 86400)

TSBS_PREFIX = (
    "cpu,hostname=host_{h},region=eu-central-1,datacenter=eu-central-1a,rack=6,os=Ubuntu16.10,arch=x86,"
    "team=SF,service=19,service_version=1,service_environment=test"
)
TSBS_FIELDS = (
    "usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq", "usage_softirq",
    "usage_steal", "usage_guest", "usage_guest_nice",
)  # fmt: skip


def clear_caches() -> None:
    validation.clear_caches()  # every parser's cache of validated series (influx, prometheus, collectd, ...)
    naming._key_table.clear()
    naming.sanitize_metric_name.cache_clear()
    naming.sanitize_label_name.cache_clear()


# ---- bodies ------------------------------------------------------------------------------------------------


def tsbs_body(hosts: int = 100, ticks: int = 100) -> bytes:
    """TSBS devops cpu-only lines: ten int fields per line, time-major like TSBS writes them."""
    rng = random.Random(1)
    lines = []
    for tick in range(ticks):
        t = NOW_NS - (ticks - tick) * 10 * 10**9
        for h in range(hosts):
            fields = ",".join(f"{f}={rng.randrange(100)}i" for f in TSBS_FIELDS)
            lines.append(f"{TSBS_PREFIX.format(h=h)} {fields} {t}")
    return "\n".join(lines).encode()


def telegraf_body(hosts: int = 100, ticks: int = 100) -> bytes:
    """Telegraf ``cpu`` lines: float fields, the common real-world shape."""
    rng = random.Random(2)
    lines = []
    for tick in range(ticks):
        t = NOW_NS - (ticks - tick) * 10 * 10**9
        for h in range(hosts):
            fields = ",".join(f"{f}={rng.random() * 100:.4f}" for f in TSBS_FIELDS[:8])
            lines.append(f"cpu,cpu=cpu-total,host=web-{h:03d} {fields} {t}")
    return "\n".join(lines).encode()


def careful_path_body(hosts: int = 100, ticks: int = 50) -> bytes:
    """Lines the fast path hands over: escaped tag values and a string field (Telegraf ``system``)."""
    lines = []
    for tick in range(ticks):
        t = NOW_NS - (ticks - tick) * 10 * 10**9
        for h in range(hosts):
            lines.append(
                f"system,host=web\\ {h},dc=eu\\,west load1=0.5,load5=0.25,load15=0.1,n_cpus=8i,"
                f'uptime={tick}i,uptime_format="{tick} days" {t}'
            )
    return "\n".join(lines).encode()


def remote_write_captured() -> bytes | None:
    path = FIXTURES / "prom_rw_01.snappy.pb"
    return path.read_bytes() if path.exists() else None


def remote_write_synthetic(series: int = 2000, samples: int = 5) -> bytes:
    request = prometheus.WriteRequest()
    for i in range(series):
        ts = request.timeseries.add()
        labels = [("__name__", f"node_metric_{i % 50}"), ("instance", f"10.0.{i // 250}.{i % 250}:9100"),
                  ("job", "node"), ("cpu", str(i % 8))]  # fmt: skip
        ts.labels.extend(prometheus.Label(name=k, value=v).SerializeToString() for k, v in labels)
        for s in range(samples):
            ts.samples.add(value=i * 0.5 + s, timestamp=NOW_S * 1000 - (samples - s) * 15_000)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def collectd_body(copies: int = 50) -> bytes:
    path = FIXTURES / "collectd_json_02.body"
    if path.exists():
        items = json.loads(path.read_bytes())
    else:
        items = [{"values": [1, 2], "dstypes": ["derive", "derive"], "dsnames": ["rx", "tx"], "time": NOW_S,
                  "interval": 10, "host": "h", "plugin": "interface", "plugin_instance": "eth0",
                  "type": "if_octets", "type_instance": ""}] * 40  # fmt: skip
    out = []
    for copy in range(copies):
        for item in items:
            out.append({**item, "host": f"host-{copy}", "time": NOW_S - 60})
    return json.dumps(out).encode()


def metrics_json_body(items: int = 10_000) -> bytes:
    return json.dumps(
        [
            {"host": f"web-{i % 100}", "name": f"app.requests.{i % 10}", "value": i * 0.5, "time": NOW_S - 30,
             "labels": {"endpoint": f"/api/{i % 20}", "method": "GET", "status": "200"}, "unit": "requests"}
            for i in range(items)
        ]
    ).encode()  # fmt: skip


def probe_body(probes: int = 2000) -> bytes:
    return json.dumps(
        [
            {"node_id": f"9f0c5d2a-1111-4222-8333-{i:012d}", "country": "DE", "region": "eu-central",
             "timestamp": "2026-11-21T23:59:00Z", "latency_ms": 12.5, "uptime_pct": 99.9, "packet_loss": 0.1,
             "metadata": {"isp": "Example"}}
            for i in range(probes)
        ]
    ).encode()  # fmt: skip


def agent_body() -> bytes:
    return json.dumps(
        {
            "timestamp": "2026-11-21T23:59:00Z", "labels": {"env": "prod"}, "load1": 0.5, "load5": 0.4,
            "cpu": {"percent": 12.5, "per_core": [float(i) for i in range(32)]},
            "memory": {"used": 1, "total": 2, "cached": 3, "buffers": 4, "swap": {"used": 0, "total": 8}},
            "disks": [{"name": f"sd{c}", "used": 1, "free": 2, "read_bytes": 3, "write_bytes": 4} for c in "abcdef"],
            "net": {nic: {"rx": 1, "tx": 2, "errors": 0} for nic in ("eth0", "eth1", "lo")},
        }
    ).encode()  # fmt: skip


# ---- measuring ---------------------------------------------------------------------------------------------


def measure(parse: Callable[[], ParseResult], repeat: int) -> tuple[int, float, float]:
    """(values per parse, cold values/s, best warm values/s), per second of this process's CPU time.

    CPU time rather than wall time, so that other work on a shared machine does not skew the figures.
    """
    clear_caches()
    start = time.process_time()
    result = parse()
    cold = time.process_time() - start
    if result.errors:
        raise SystemExit(f"benchmark body has errors: {result.errors[:3]}")
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        parse()
        best = min(best, time.process_time() - start)
    values = len(result)
    return values, values / cold, values / best


def rows(only: set[str] | None) -> list[tuple[str, str, Callable[[], ParseResult]]]:
    table: list[tuple[str, str, Callable[[], ParseResult]]] = []

    def add(group: str, label: str, body: bytes, parse: Callable[[bytes], ParseResult]) -> None:
        if only is None or group in only:
            table.append((label, f"{len(body) / 1e6:.2f} MB", lambda: parse(body)))

    add("influx", "influx TSBS cpu-only (10 int fields)", tsbs_body(), lambda b: parse_line_protocol(b, OPTIONS))
    add("influx", "influx Telegraf cpu (8 float fields)", telegraf_body(), lambda b: parse_line_protocol(b, OPTIONS))
    add("influx", "influx escapes + string field", careful_path_body(), lambda b: parse_line_protocol(b, OPTIONS))
    captured = remote_write_captured()
    if captured is not None:
        add("prometheus", "remote_write captured (500 x 1)", captured, lambda b: parse_remote_write(b, OPTIONS))
    add(
        "prometheus", "remote_write 2000 series x 5", remote_write_synthetic(), lambda b: parse_remote_write(b, OPTIONS)
    )
    add("collectd", "collectd JSON (2000 value lists)", collectd_body(), lambda b: parse_collectd_json(b, OPTIONS))
    add("json", "FiberStack JSON batch (10k items)", metrics_json_body(), lambda b: parse_metrics_json(b, OPTIONS))
    add("json", "probe payload (2000 probes)", probe_body(), lambda b: parse_probe_payload(b, OPTIONS))
    add("json", "agent payload (one host)", agent_body(), lambda b: parse_agent_payload("web-1", b, OPTIONS))
    return table


# ---- remote_write decoder comparison (--decoders) ------------------------------------------------------------

_unpack_double = struct.Struct("<d").unpack_from


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def decode_by_hand(raw: bytes) -> int:
    """Pure-Python wire walk: label bytes as cache key, samples decoded inline (happy path only)."""
    cache: dict[bytes, bytes] = {}
    count = pos = 0
    end = len(raw)
    while pos < end:
        tag = raw[pos]
        length, pos = _varint(raw, pos + 1)
        if tag != 0x0A:
            pos += length
            continue
        series_end = pos + length
        labels_start = labels_end = pos
        while pos < series_end:
            field = raw[pos]
            size, pos = _varint(raw, pos + 1)
            if field == 0x0A:
                pos += size
                labels_end = pos
            elif field == 0x12:
                sample_end = pos + size
                while pos < sample_end:
                    if raw[pos] == 0x09:
                        _unpack_double(raw, pos + 1)
                        pos += 9
                    else:
                        _, pos = _varint(raw, pos + 1)
                count += 1
            else:
                pos += size
        cache.setdefault(raw[labels_start:labels_end], raw[labels_start:labels_end])
    return count


def compare_decoders(repeat: int) -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    captured = remote_write_captured()
    if captured is None:
        print("no captured remote_write body: skipping --decoders")
        return
    raw = bytes(cramjam.snappy.decompress_raw(captured))

    fdp = descriptor_pb2.FileDescriptorProto(name="bench_rw.proto", package="bench", syntax="proto3")
    field = descriptor_pb2.FieldDescriptorProto
    label = fdp.message_type.add(name="Label")
    label.field.add(name="name", number=1, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)
    label.field.add(name="value", number=2, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)
    sample = fdp.message_type.add(name="Sample")
    sample.field.add(name="value", number=1, label=field.LABEL_OPTIONAL, type=field.TYPE_DOUBLE)
    sample.field.add(name="timestamp", number=2, label=field.LABEL_OPTIONAL, type=field.TYPE_INT64)
    series = fdp.message_type.add(name="TimeSeries")
    series.field.add(name="labels", number=1, label=field.LABEL_REPEATED, type=field.TYPE_MESSAGE,
                     type_name=".bench.Label")  # fmt: skip
    series.field.add(name="samples", number=2, label=field.LABEL_REPEATED, type=field.TYPE_MESSAGE,
                     type_name=".bench.Sample")  # fmt: skip
    request = fdp.message_type.add(name="WriteRequest")
    request.field.add(name="timeseries", number=1, label=field.LABEL_REPEATED, type=field.TYPE_MESSAGE,
                      type_name=".bench.TimeSeries")  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    with_messages = message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.WriteRequest"))

    def upb_label_messages() -> int:
        message = with_messages.FromString(raw)
        count = 0
        for ts in message.timeseries:
            tuple((lab.name, lab.value) for lab in ts.labels)
            for point in ts.samples:
                point.value, point.timestamp  # noqa: B018
                count += 1
        return count

    def upb_label_bytes() -> int:
        message = prometheus.WriteRequest.FromString(raw)
        count = 0
        for ts in message.timeseries:
            tuple(ts.labels)
            for point in ts.samples:
                point.value, point.timestamp  # noqa: B018
                count += 1
        return count

    print(f"\nremote_write decoding strategies on the captured body ({len(raw)} bytes decompressed):")
    for name, decode in [
        ("hand-written pure-Python wire decoder", lambda: decode_by_hand(raw)),
        ("upb, Label messages", upb_label_messages),
        ("upb, labels as opaque bytes (used)", upb_label_bytes),
    ]:
        best = float("inf")
        for _ in range(repeat * 5):
            start = time.process_time()
            count = decode()
            best = min(best, time.process_time() - start)
        print(f"  {name:<40} {best * 1e3:7.2f} ms  {count / best:>12,.0f} samples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", help="comma-separated groups: influx, prometheus, collectd, json")
    parser.add_argument("--decoders", action="store_true", help="also compare remote_write decoders")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None

    print(f"{'format':<40} {'body':>9} {'values':>8} {'cold values/s':>14} {'warm values/s':>14}")
    for label, size, parse in rows(only):
        values, cold, warm = measure(parse, args.repeat)
        print(f"{label:<40} {size:>9} {values:>8,} {cold:>14,.0f} {warm:>14,.0f}")
    if args.decoders:
        compare_decoders(args.repeat)


if __name__ == "__main__":
    main()
