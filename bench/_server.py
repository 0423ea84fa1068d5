"""A throw-away FiberStack server for benchmarks: production settings, a fresh database, N daphne workers.

Production scales daphne across cores the way this does: one listening socket, bound once by a parent
(here the bench; in production ``python -m fiberstack.webserver`` or ``make run``), inherited by several
workers started with ``webserver.daphne_command`` (daphne with accepts spread by load,
``fiberstack/webworker.py``).

The database is created next to the one ``DATABASE_URL`` names (same server, name ``fiberstack_bench``
unless told otherwise), dropped and re-created first so every run starts empty, migrated with
``manage.py migrate``, and given an organization ``bench`` with write and read tokens.

Redis gets the same treatment: the server uses database ``redis_db`` (default 15) of the Redis server
named by ``REDIS_URL`` and the bench flushes it first. Sharing a Redis database with another
FiberStack would be wrong both ways: the series-id and host caches are keyed by organization pk, so a
fresh bench database (organization pk 1 again) would read ids cached by an earlier run or by the
development server -- and poison theirs.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fiberstack.webserver import daphne_command, listen  # noqa: E402 - standard library only, no Django

# fiberstack.celery_routes.QUEUES, read without importing the project (benchmarks run outside Django).
CELERY_QUEUES = ("celery", "maintenance")
ORG_SLUG = "bench"


def database_url_for(base_url: str, name: str) -> str:
    """``base_url`` with its database name replaced by ``name`` (same server, user and options)."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin_conninfo(base_url: str) -> str:
    return database_url_for(base_url, "postgres")


def redis_url_for(base_url: str, db: int) -> str:
    """``base_url`` (redis://host:port/N) pointing at database ``db`` instead."""
    return urlunsplit(urlsplit(base_url)._replace(path=f"/{db}"))


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def recreate_database(base_url: str, name: str) -> None:
    with psycopg.connect(_admin_conninfo(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(base_url: str, name: str) -> None:
    with psycopg.connect(_admin_conninfo(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class BenchServer:
    """Lifecycle: :meth:`prepare` (database, migrations, tokens), :meth:`start` (workers), :meth:`stop`."""

    base_database_url: str
    base_redis_url: str = "redis://127.0.0.1:6379/0"
    redis_db: int = 15
    db_name: str = "fiberstack_bench"
    workers: int = 2
    port: int = 0
    keep_db: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    write_token: str = ""
    read_token: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fiberstack-bench-")))
    _sock: socket.socket | None = None

    @property
    def database_url(self) -> str:
        return database_url_for(self.base_database_url, self.db_name)

    @property
    def redis_url(self) -> str:
        return redis_url_for(self.base_redis_url, self.redis_db)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="fiberstack.settings.prod",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CELERY_BROKER_URL=self.redis_url,
            # One key for the whole run: tokens are HMAC'd with it when issued and when checked.
            SECRET_KEY=self.secret_key,
            SECURE_SSL_REDIRECT="false",
            ALLOWED_HOSTS="127.0.0.1",
            DEBUG="false",
            LOG_LEVEL="WARNING",
            # The caller's PYTHONPATH stays behind ours (a settings module for --settings may live there).
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        )
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, env: dict[str, str]) -> str:
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout.strip()

    def prepare(self) -> None:
        recreate_database(self.base_database_url, self.db_name)
        flush_redis(self.redis_url)
        env = self.env()
        self.manage("migrate", "--no-input", env=env)
        self.manage("shell", "-c", (
            "from apps.organizations.services import create_organization; "
            f"create_organization(name='Bench', slug='{ORG_SLUG}', actor=None)"
        ), env=env)
        self.write_token = self.manage("issue_token", ORG_SLUG, "bench-write", "--scope", "write", env=env)
        self.read_token = self.manage("issue_token", ORG_SLUG, "bench-read", "--scope", "read", env=env)

    def issue_token(self, name: str, scope: str) -> str:
        """Another token of the bench organization (e.g. ``config`` for alert rules and channels)."""
        return self.manage("issue_token", ORG_SLUG, name, "--scope", scope, env=self.env())

    def start_celery(self, *, concurrency: int = 2, beat: bool = True) -> None:
        """A Celery worker for every queue (and beat), as ``make run`` starts them, on the bench database."""
        env = self.env()
        commands = [[sys.executable, "-m", "celery", "-A", "fiberstack", "worker", "-l", "WARNING",
                     "--concurrency", str(concurrency), "-Q", ",".join(CELERY_QUEUES), "-n", "bench@%h"]]
        if beat:
            commands.append([sys.executable, "-m", "celery", "-A", "fiberstack", "beat", "-l", "WARNING",
                             "-s", str(self.log_dir / "celerybeat-schedule")])
        for command in commands:
            log = open(self.log_dir / f"celery-{command[5]}.log", "wb")  # noqa: SIM115 - lives with the process
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

    def start(self, timeout: float = 60.0) -> None:
        sock = listen("127.0.0.1", self.port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        env = self.env()
        for index in range(self.workers):
            log = open(self.log_dir / f"daphne-{index}.log", "wb")  # noqa: SIM115 - lives as long as the worker
            command = daphne_command(sys.executable, sock.fileno())
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=[sock.fileno()],
                                                   stdout=log, stderr=subprocess.STDOUT))
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a daphne worker exited with {proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status < 500:
                    # Every worker must have imported Django before timing starts; give the others a moment.
                    time.sleep(1.0)
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"== {path}\n" + "\n".join(text))
        return "\n".join(out)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.processes]

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if not self.keep_db:
            drop_database(self.base_database_url, self.db_name)
