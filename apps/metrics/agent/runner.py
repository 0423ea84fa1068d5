"""The agent loop: every ``interval`` seconds collect, queue and push; exit cleanly on SIGINT/SIGTERM.

Each cycle queues up to three requests, one per door that fits the data:

* ``POST /api/v1/agents/<host>/metrics`` -- the host document (cpu, mem, swap, system), nested JSON,
  with ``host_info`` (agent version, OS, CPU/memory sizes) that keeps the Host's inventory current;
* ``POST /api/v1/metrics`` -- labelled metrics (per mount, disk, interface; ``agent_info``), JSON batch;
* ``POST /api/v1/write?precision=ms`` -- probe results, InfluxDB line protocol.

The command-line options are defined here once and shared by ``manage.py agent`` and
``python -m apps.metrics.agent`` (which needs no Django at all).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from apps.core.cli import seconds, whole_number
from apps.metrics.agent import AGENT_VERSION
from apps.metrics.agent.client import DEFAULT_MAX_BATCHES, DEFAULT_TIMEOUT_S, Batch, PushClient, Transport
from apps.metrics.agent.collectors import HostCollector
from apps.metrics.agent.probes import ProbeSet, parse_probe, to_line_protocol

logger = logging.getLogger(__name__)

ONCE_ATTEMPTS = 3


@dataclass(slots=True)
class AgentConfig:
    """Everything the agent needs; built from the command line by :func:`config_from_options`."""

    url: str
    token: str
    interval: float = 10.0
    host: str = field(default_factory=socket.gethostname)
    probes: list[str] = field(default_factory=list)
    once: bool = False
    max_batches: int = DEFAULT_MAX_BATCHES
    timeout: float = DEFAULT_TIMEOUT_S


#: Where the agent reads its token when ``--token`` is not given.
TOKEN_ENV = "FIBERSTACK_AGENT_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="FiberStack base URL, e.g. http://127.0.0.1:8000")
    # The token may come from the environment so that it never shows in the process list (``ps``).
    token = os.environ.get(TOKEN_ENV)
    parser.add_argument("--token", required=not token, default=token,
                        help=f"agent token with the ingest scope (default: ${TOKEN_ENV})")
    parser.add_argument("--interval", type=seconds(86_400), default=10.0,
                        help="seconds between collections (default 10)")
    parser.add_argument("--host", default=None, help="host name to report as (default: this machine's hostname)")
    parser.add_argument("--probe", action="append", default=[], metavar="URL",
                        help="probe to run each interval: http(s)://…, tcp://host:port, icmp://host (repeatable)")
    parser.add_argument("--once", action="store_true", help="collect and push once, then exit (status 1 on failure)")
    parser.add_argument("--buffer", type=whole_number(1, 1_000_000), default=DEFAULT_MAX_BATCHES,
                        help=f"batches kept while the server is unreachable (default {DEFAULT_MAX_BATCHES})")
    parser.add_argument("--timeout", type=seconds(3_600), default=DEFAULT_TIMEOUT_S, help="HTTP timeout in seconds")


def config_from_options(options: Mapping[str, Any]) -> AgentConfig:
    if not options["interval"] > 0:  # nan too
        raise ValueError("--interval must be positive")
    for spec in options["probe"]:
        parse_probe(spec)  # fail at start on a malformed probe, not on the first cycle
    return AgentConfig(
        url=options["url"], token=options["token"], interval=options["interval"],
        host=options["host"] or socket.gethostname(), probes=list(options["probe"]), once=options["once"],
        max_batches=options["buffer"], timeout=options["timeout"],
    )


class Agent:
    """Collects with :class:`HostCollector` and :class:`ProbeSet`, pushes with :class:`PushClient`."""

    def __init__(self, config: AgentConfig, *, transport: Transport | None = None) -> None:
        self.config = config
        self.client = PushClient(config.url, config.token, transport=transport, max_batches=config.max_batches,
                                 timeout=config.timeout)
        self.collector = HostCollector()
        self.probes = ProbeSet([parse_probe(spec, timeout=min(config.timeout, 5.0)) for spec in config.probes])

    def collect_batches(self) -> list[Batch]:
        """One collection turned into the requests that carry it."""
        host = self.config.host
        collection = self.collector.collect()
        stamp = datetime.fromtimestamp(collection.time, UTC).isoformat().replace("+00:00", "Z")
        document = {"timestamp": stamp, **collection.document}
        if collection.host_info:
            document["host_info"] = collection.host_info
        batches = [Batch(f"/api/v1/agents/{quote(host, safe='')}/metrics", _json(document), "application/json",
                         "host metrics")]
        if collection.items:
            items = [{"host": host, "time": collection.time, **item} for item in collection.items]
            batches.append(Batch("/api/v1/metrics", _json(items), "application/json", "labelled metrics"))
        results = self.probes.run()
        if results:
            body = to_line_protocol(results, host, time.time()).encode()
            batches.append(Batch("/api/v1/write?precision=ms", body, "text/plain; charset=utf-8", "probes"))
        return batches

    def cycle(self) -> bool:
        """Collect and queue; False (logged) when collection failed."""
        try:
            batches = self.collect_batches()
        except Exception:  # a collector bug must not kill monitoring; the next cycle tries again
            logger.exception("collection failed")
            return False
        for batch in batches:
            self.client.submit(batch)
        return True

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """One collection and push, with a few quick retries; True when the server accepted everything."""
        stop = stop or threading.Event()
        rejected_before = self.client.rejected
        if not self.cycle():
            return False
        for attempt in range(1, ONCE_ATTEMPTS + 1):
            if self.client.flush():
                break
            if attempt == ONCE_ATTEMPTS or stop.wait(max(0.0, self.client.retry_at - self.client.clock())):
                break
        return self.client.pending == 0 and self.client.rejected == rejected_before

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set. Missed intervals are skipped, not caught up (no burst after a stall)."""
        interval = self.config.interval
        logger.info("fiberstack agent %s: host %r -> %s every %.0f s, %d probes", AGENT_VERSION, self.config.host,
                    self.config.url, interval, len(self.probes.probes))
        next_collect = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_collect:
                self.cycle()
                next_collect += interval
                if next_collect <= now:
                    next_collect = now + interval
            self.client.flush()
            wake = next_collect
            if self.client.pending:
                wake = min(wake, max(self.client.retry_at, time.monotonic() + 0.05))
            stop.wait(max(0.0, wake - time.monotonic()))
        if self.client.pending and not self.client.backing_off():
            self.client.flush()
        if self.client.pending:
            logger.warning("stopping with %d batches unsent", self.client.pending)
        logger.info("agent stopped: %d batches sent, %d dropped", self.client.sent, self.client.dropped)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set ``stop``: the current push finishes and the loop exits (main thread only)."""

    def handler(signum: int, _frame: object) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_from_options(options: Mapping[str, Any]) -> int:
    """Shared body of ``manage.py agent`` and ``python -m apps.metrics.agent``; returns the exit status."""
    config = config_from_options(options)
    agent = Agent(config)
    stop = threading.Event()
    install_signal_handlers(stop)
    if config.once:
        ok = agent.run_once(stop)
        if not ok:
            logger.error("push failed: %d batches unsent, %d refused", agent.client.pending, agent.client.rejected)
        return 0 if ok else 1
    agent.run(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.metrics.agent", description=__doc__.splitlines()[0])
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return run_from_options(options)
    except ValueError as exc:
        parser.error(str(exc))
        return 2


def _json(value: object) -> bytes:
    # allow_nan=False: psutil never yields NaN, and if it did the server would drop or reject it anyway.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
