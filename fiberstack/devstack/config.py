"""Pure pieces of the developer stack: paths, ports, URLs and config-file rendering.

Nothing here starts a process or touches the file system beyond computing paths, so every
function can be unit-tested without PostgreSQL or Redis installed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# Project-specific ports: the machine's own PostgreSQL/Redis usually sit on 5432/6379, and a
# private instance must never be confused with (or collide with) them.
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63790
# Two roles, as in a hardened production database (docs/database-roles.md): the bootstrap superuser
# owns the database and runs the migrations; the product's processes connect as the app role, which
# owns nothing and gets DML only (`manage.py grant_app_role`).
PG_SUPERUSER = "fiberstack"
PG_APP_USER = "fiberstack_app"
PG_DATABASE = "fiberstack"
LOCALHOST = "127.0.0.1"

# Redis database numbers: `make test` uses its own so a test run never flushes or reads the
# cache, broker queues or channel groups of a `make run` that shares the private instance.
REDIS_DB_RUN = 0
REDIS_DB_TEST = 1

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes including the NUL on Linux).
UNIX_SOCKET_PATH_MAX = 107

SETTINGS_DEV = "fiberstack.settings.dev"
SETTINGS_TEST = "fiberstack.settings.test"


def project_root() -> Path:
    """The checkout this package lives in (fiberstack/devstack/config.py -> three levels up)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Layout:
    """Where the private services keep their files; everything lives under `var/` (gitignored)."""

    root: Path
    var_dir: Path | None = None

    @property
    def var(self) -> Path:
        return self.var_dir if self.var_dir is not None else self.root / "var"

    @property
    def pg_base(self) -> Path:
        # The data directory sits one level down so the server log can live next to it: initdb
        # insists on an empty directory, and only var/postgres is handed to the postgres user.
        return self.var / "postgres"

    @property
    def pg_data(self) -> Path:
        return self.pg_base / "data"

    @property
    def pg_log(self) -> Path:
        return self.pg_base / "server.log"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    @property
    def redis_dir(self) -> Path:
        return self.var / "redis"

    @property
    def redis_conf(self) -> Path:
        return self.redis_dir / "redis.conf"

    @property
    def redis_pid(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_log(self) -> Path:
        return self.redis_dir / "redis.log"

    @property
    def lock(self) -> Path:
        return self.var / ".devstack.lock"

    @property
    def credentials(self) -> Path:
        return self.var / "demo-credentials"

    @property
    def beat_schedule(self) -> Path:
        return self.var / "celerybeat-schedule"


def port_from_env(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a TCP port override, failing with the variable's name rather than a bare ValueError."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name}={port} is outside 1-65535")
    return port


def database_url(
    port: int, *, host: str = LOCALHOST, user: str = PG_SUPERUSER, name: str = PG_DATABASE
) -> str:
    """URL of the private cluster. TCP rather than the unix socket: every client (psycopg,
    dj-database-url, psql, a GUI) understands it and it has no path-length limit."""
    return f"postgres://{quote(user, safe='')}@{host}:{port}/{quote(name, safe='')}"


def redis_url(port: int, db: int = REDIS_DB_RUN, *, host: str = LOCALHOST) -> str:
    return f"redis://{host}:{port}/{db}"


def socket_dir_fits(socket_dir: Path, port: int) -> bool:
    """Whether PostgreSQL can create its socket (`<dir>/.s.PGSQL.<port>`) in `socket_dir`."""
    return len(os.fsencode(str(socket_dir / f".s.PGSQL.{port}"))) <= UNIX_SOCKET_PATH_MAX


def _pg_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def shared_buffers_mb(memory_bytes: int | None) -> int:
    """A quarter of the machine's memory (PostgreSQL's own guidance), at least its default 128 MB and at most
    1 GB. Ingest then keeps the newest raw partition and its index in PostgreSQL's cache instead of handing
    pages to the kernel and back: about 5 % more values/s per core (bench/README.md, "shared_buffers")."""
    if not memory_bytes:
        return 128
    return max(128, min(1024, memory_bytes // 4 // 2**20))


def render_postgres_conf(port: int, socket_dir: Path | None, *, timescaledb: bool = False,
                         memory_bytes: int | None = None) -> str:
    """The settings devstack owns, written to `fiberstack.conf` (included by postgresql.conf) on
    every start so a changed port or a moved checkout takes effect without re-initialising."""
    sockets = _pg_quote(str(socket_dir)) if socket_dir is not None else "''"
    lines = [
        "# Written by fiberstack.devstack on every start; put your own overrides in postgresql.auto.conf",
        "# (ALTER SYSTEM), which PostgreSQL reads after this file.",
        f"listen_addresses = {_pg_quote(LOCALHOST)}",
        f"port = {port}",
        f"unix_socket_directories = {sockets}",
        "max_connections = 200",
        f"shared_buffers = {shared_buffers_mb(memory_bytes)}MB",
        # A throw-away development cluster: a power cut may cost it, but the test suite runs
        # several times faster without an fsync per commit.
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "log_min_duration_statement = -1",
    ]
    if timescaledb:
        lines += [
            "shared_preload_libraries = 'timescaledb'",
            "timescaledb.telemetry_level = off",
        ]
    return "\n".join(lines) + "\n"


def _redis_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_redis_conf(port: int, directory: Path, pidfile: Path, logfile: Path) -> str:
    """Config for the private Redis: loopback only, no persistence (everything in it is a cache,
    a queue or a channel message that the product can rebuild or afford to lose)."""
    return (
        "\n".join(
            [
                "# Written by fiberstack.devstack on every start.",
                f"bind {LOCALHOST}",
                "protected-mode yes",
                f"port {port}",
                "daemonize yes",
                f"pidfile {_redis_quote(str(pidfile))}",
                f"logfile {_redis_quote(str(logfile))}",
                f"dir {_redis_quote(str(directory))}",
                'save ""',
                "appendonly no",
                "databases 16",
            ]
        )
        + "\n"
    )


@dataclass(frozen=True)
class PostmasterPid:
    """The interesting lines of PostgreSQL's `postmaster.pid` (see miscadmin.h LOCK_FILE_LINE_*)."""

    pid: int
    port: int | None
    status: str


def parse_postmaster_pid(text: str) -> PostmasterPid | None:
    """Parse postmaster.pid; None when it is empty or half-written (the server is starting)."""
    lines = text.splitlines()
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return None
    port: int | None = None
    if len(lines) > 3 and lines[3].strip().isdigit():
        port = int(lines[3])
    status = lines[7].strip() if len(lines) > 7 else ""
    return PostmasterPid(pid=pid, port=port, status=status)


def parse_pg_version(text: str) -> str | None:
    """Major version from `postgres --version` output, e.g. 'postgres (PostgreSQL) 15.8' -> '15'."""
    for token in text.split():
        head = token.split(".")[0]
        if head.isdigit():
            return head
    return None


def parse_shell_env(text: str) -> dict[str, str]:
    """Read a shell-sourceable KEY=value file (the format of var/demo-credentials)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words and words[0] == "export":
            words = words[1:]
        for word in words:
            key, sep, value = word.partition("=")
            if sep and key.isidentifier():
                values[key] = value
    return values


def version_key(name: str) -> tuple[int, ...]:
    """Sort key for version-named directories such as /usr/lib/postgresql/15 (non-numeric last)."""
    parts = name.split(".")
    if not all(p.isdigit() for p in parts):
        return (-1,)
    return tuple(int(p) for p in parts)
