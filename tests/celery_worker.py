"""Real Celery worker processes for the tests of flows that depend on timing, retries or concurrency
(broker: the test Redis, database: the test database), not the eager mode the other tests use.

Import the fixtures into a test module (``from tests.celery_worker import worker_factory_fixture, worker_fixture``; they
register as ``worker_factory`` and ``worker``). ``worker_factory`` starts one or more workers,
each a solo-pool process; by default they share one private queue per test, so several workers race for
the same messages. Every worker started is stopped (by its pid) when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
# `celery -A fiberstack worker`, except that tasks the worker sends (retries, fan-out) go through the broker
# as in production: settings.test makes apply_async eager for the in-process tests.
_MAIN = ("import sys; from django.conf import settings; settings.CELERY_TASK_ALWAYS_EAGER = False; "
         "from fiberstack.celery import app; app.worker_main(sys.argv[1:])")


@dataclass
class CeleryWorker:
    """One worker process and its log lines (read by a thread so the pipe never fills)."""

    queue: str
    name: str
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def log(self, last: int = 3000) -> str:
        return "".join(list(self.lines))[-last:]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 90, *, alive: bool = True) -> None:
        """Poll ``predicate`` until true; fail early with the log if the worker died (``alive``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if alive and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}: {self.log()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out; worker {self.name} log: {self.log()}")

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_for(lambda: any(" ready." in line for line in list(self.lines)), timeout)

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (warm shutdown) or SIGKILL (a crash: nothing acknowledged, nothing cleaned up)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_worker(queue: str, *, name: str = "", env: dict[str, str] | None = None) -> CeleryWorker:
    """Start ``celery worker --pool solo -Q queue`` on the test database; ``env`` adds environment
    variables (e.g. FIBERSTACK_* settings read by settings/base.py)."""
    name = name or f"w-{uuid.uuid4().hex[:6]}"
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fiberstack"))
    full_env = dict(os.environ, DJANGO_SETTINGS_MODULE="fiberstack.settings.test",
                    DATABASE_URL=urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])),
                    **(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, "worker", "--pool", "solo", "-Q", queue,
         "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    worker = CeleryWorker(queue=queue, name=name, proc=proc)
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: worker.lines.extend(iter(lambda: stdout.readline().decode(), "")),
                     daemon=True).start()
    return worker


@pytest.fixture(name="worker_factory")
def worker_factory_fixture() -> Iterator[Callable[..., CeleryWorker]]:
    """Factory: ``start(queue=None, *, name="", env=None)`` -> CeleryWorker. Without ``queue`` every worker
    of the test consumes the same private queue (``fs-test-<hex>``)."""
    default_queue = f"fs-test-{uuid.uuid4().hex[:8]}"
    started: list[CeleryWorker] = []

    def start(queue: str | None = None, *, name: str = "", env: dict[str, str] | None = None) -> CeleryWorker:
        worker = start_worker(queue or default_queue, name=name, env=env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(name="worker")
def worker_fixture(worker_factory: Callable[..., CeleryWorker]) -> CeleryWorker:
    """One worker on a private queue."""
    return worker_factory()
