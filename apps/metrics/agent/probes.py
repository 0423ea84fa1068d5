"""Availability probes run by the agent: HTTP GET, TCP connect and ICMP ping.

A probe is given as a URL on the command line (``--probe https://example.com/health``,
``--probe tcp://db:5432``, ``--probe icmp://10.0.0.1``). Each run gives a :class:`ProbeResult`; the
:class:`ProbeSet` also keeps, per probe, the share of successful runs since the agent started
(``uptime_pct``), the figure a status page shows.

Results are pushed as InfluxDB line protocol (``probe_<kind>`` measurement, tags ``host`` -- the agent's
host, i.e. where the probe runs from -- and ``target``), so they become series such as
``probe_http_latency_ms{host="web-1", target="https://example.com/health"}``.

ICMP needs either the ``ping`` binary (setuid or with CAP_NET_RAW, as distributions install it) or
privileges this process usually lacks; when ``ping`` is missing or not permitted the probe is reported
as unsupported once in the log and skipped, instead of failing every cycle.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from apps.metrics.agent import USER_AGENT

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
ICMP_COUNT = 3
_PING_SUMMARY_RE = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_RTT_RE = re.compile(r"= [\d.]+/([\d.]+)/[\d.]+")


@dataclass(slots=True)
class ProbeResult:
    """One run of one probe. ``latency_ms`` is None when nothing answered."""

    kind: str
    target: str
    up: bool
    latency_ms: float | None = None
    status: int | None = None
    packet_loss: float | None = None
    error: str = ""
    uptime_pct: float | None = None

    def fields(self) -> dict[str, float | int]:
        """The numeric fields pushed for this result (None values are left out)."""
        out: dict[str, float | int] = {"up": int(self.up)}
        if self.latency_ms is not None:
            out["latency_ms"] = round(self.latency_ms, 3)
        if self.status is not None:
            out["status"] = self.status
        if self.packet_loss is not None:
            out["packet_loss"] = round(self.packet_loss, 3)
        if self.uptime_pct is not None:
            out["uptime_pct"] = round(self.uptime_pct, 3)
        return out


class UnsupportedProbe(Exception):
    """This machine cannot run the probe (no ``ping`` binary, not permitted); logged once, then skipped."""


class Probe:
    """Base class: ``kind`` and ``target`` name the probe; :meth:`run` never raises except UnsupportedProbe."""

    kind = ""

    def __init__(self, target: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.target = target
        self.timeout = timeout

    def run(self) -> ProbeResult:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"


class HttpProbe(Probe):
    """GET the URL; up when the final status is 2xx or 3xx. Latency is the time to the response headers."""

    kind = "http"

    def run(self) -> ProbeResult:
        request = urllib.request.Request(self.target, headers={"User-Agent": USER_AGENT}, method="GET")  # noqa: S310
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the URL is the probe
                latency = (time.perf_counter() - started) * 1000
                response.read(65536)
                status = response.status
        except urllib.error.HTTPError as exc:  # a 4xx/5xx answer: the server is reachable but unhealthy
            latency = (time.perf_counter() - started) * 1000
            return ProbeResult(self.kind, self.target, up=False, latency_ms=latency, status=exc.code,
                               error=f"HTTP {exc.code}")
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused, TLS errors
            return ProbeResult(self.kind, self.target, up=False, error=_reason(exc))
        return ProbeResult(self.kind, self.target, up=200 <= status < 400, latency_ms=latency, status=status)


class TcpProbe(Probe):
    """Open (and close) a TCP connection; up when the handshake completes. Latency is the connect time."""

    kind = "tcp"

    def __init__(self, target: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(target, timeout)
        parts = urlsplit(target)
        if not parts.hostname or parts.port is None:
            raise ValueError(f"TCP probe {target!r} needs a host and a port: tcp://host:port")
        self.address = (parts.hostname, parts.port)

    def run(self) -> ProbeResult:
        started = time.perf_counter()
        try:
            with socket.create_connection(self.address, timeout=self.timeout):
                latency = (time.perf_counter() - started) * 1000
        except OSError as exc:
            return ProbeResult(self.kind, self.target, up=False, error=_reason(exc))
        return ProbeResult(self.kind, self.target, up=True, latency_ms=latency)


class IcmpProbe(Probe):
    """``ping -c 3`` the host through the system binary; up when any reply came back."""

    kind = "icmp"

    def __init__(self, target: str, timeout: float = DEFAULT_TIMEOUT_S, ping: str | None = None) -> None:
        super().__init__(target, timeout)
        host = urlsplit(target).hostname
        if not host:
            raise ValueError(f"ICMP probe {target!r} needs a host: icmp://host")
        self.host = host
        self.ping = ping if ping is not None else shutil.which("ping")

    def run(self) -> ProbeResult:
        if not self.ping:
            raise UnsupportedProbe("no `ping` binary on this machine")
        wait = max(1, int(self.timeout))
        command = [self.ping, "-n", "-c", str(ICMP_COUNT), "-i", "0.2", "-W", str(wait), self.host]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, check=False,  # noqa: S603
                                       timeout=self.timeout + ICMP_COUNT * (wait + 0.2))
        except subprocess.TimeoutExpired:
            return ProbeResult(self.kind, self.target, up=False, packet_loss=100.0, error="ping timed out")
        except OSError as exc:
            raise UnsupportedProbe(f"cannot run {self.ping}: {exc}") from exc
        output = completed.stdout + completed.stderr
        summary = _PING_SUMMARY_RE.search(output)
        if summary is None:
            if "not permitted" in output.lower() or "permission" in output.lower():
                raise UnsupportedProbe(f"ping is not permitted here: {output.strip()[:200]}")
            return ProbeResult(self.kind, self.target, up=False, packet_loss=100.0,
                               error=output.strip()[:200] or f"ping exited with {completed.returncode}")
        sent, received = int(summary.group(1)), int(summary.group(2))
        loss = 100.0 * (sent - received) / sent if sent else 100.0
        rtt = _PING_RTT_RE.search(output)
        latency = float(rtt.group(1)) if rtt and received else None
        return ProbeResult(self.kind, self.target, up=received > 0, latency_ms=latency, packet_loss=loss)


PROBE_KINDS: dict[str, type[Probe]] = {"http": HttpProbe, "https": HttpProbe, "tcp": TcpProbe, "icmp": IcmpProbe}


def parse_probe(spec: str, timeout: float = DEFAULT_TIMEOUT_S) -> Probe:
    """``http(s)://…`` -> HttpProbe, ``tcp://host:port`` -> TcpProbe, ``icmp://host`` -> IcmpProbe."""
    scheme = urlsplit(spec).scheme.lower()
    kind = PROBE_KINDS.get(scheme)
    if kind is None:
        raise ValueError(f"unknown probe {spec!r}: use http://, https://, tcp://host:port or icmp://host")
    return kind(spec, timeout)


class ProbeSet:
    """Runs every probe concurrently once per cycle and tracks each probe's running uptime.

    An unsupported probe is logged once and dropped from later cycles, so a missing ``ping`` costs one
    warning, not one per interval.
    """

    def __init__(self, probes: list[Probe]) -> None:
        self.probes = list(probes)
        self._runs: dict[str, list[int]] = {}  # target -> [attempts, successes]

    def run(self) -> list[ProbeResult]:
        if not self.probes:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(self.probes)), thread_name_prefix="probe") as pool:
            outcomes = list(pool.map(_run_one, self.probes))
        results: list[ProbeResult] = []
        for probe, outcome in zip(list(self.probes), outcomes, strict=True):
            if isinstance(outcome, UnsupportedProbe):
                logger.warning("probe %s is unsupported on this machine and is skipped: %s", probe.target, outcome)
                self.probes.remove(probe)
                continue
            counts = self._runs.setdefault(probe.target, [0, 0])
            counts[0] += 1
            counts[1] += int(outcome.up)
            outcome.uptime_pct = 100.0 * counts[1] / counts[0]
            if not outcome.up:
                logger.info("probe %s is down: %s", probe.target, outcome.error or "no answer")
            results.append(outcome)
        return results


def _run_one(probe: Probe) -> ProbeResult | UnsupportedProbe:
    try:
        return probe.run()
    except UnsupportedProbe as exc:
        return exc
    except Exception as exc:  # a bug in one probe must not stop the agent
        logger.exception("probe %s failed", probe.target)
        return ProbeResult(probe.kind, probe.target, up=False, error=_reason(exc))


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc) or type(exc).__name__


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def to_line_protocol(results: list[ProbeResult], host: str, time_s: float) -> str:
    """Render results as line protocol with millisecond timestamps (post with ``precision=ms``)."""
    stamp = int(time_s * 1000)
    lines = []
    for result in results:
        fields = ",".join(
            f"{name}={value}i" if isinstance(value, int) else f"{name}={value!r}"
            for name, value in result.fields().items()
        )
        lines.append(f"probe_{result.kind},host={_escape_tag(host)},target={_escape_tag(result.target)} "
                     f"{fields} {stamp}")
    return "\n".join(lines) + ("\n" if lines else "")
