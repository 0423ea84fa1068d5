"""The private PostgreSQL cluster under var/postgres, used when DATABASE_URL is not set."""

# ruff: noqa: S603
# Subprocesses run PostgreSQL's own programs (found by discover_bindir) with arguments built here.

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fiberstack.dbroles import create_app_role_sql
from fiberstack.devstack.config import (
    LOCALHOST,
    PG_APP_USER,
    PG_DATABASE,
    PG_SUPERUSER,
    Layout,
    PostmasterPid,
    database_url,
    machine_memory_bytes,
    parse_pg_version,
    parse_postmaster_pid,
    render_postgres_conf,
    socket_dir_fits,
    version_key,
)
from fiberstack.devstack.system import (
    DevstackError,
    ServiceUser,
    apt_install,
    drop_privileges_prefix,
    first_blocked_ancestor,
    is_root,
    pick_service_user,
    pid_alive,
    port_for_new_server,
    run_checked,
    say,
    tail,
    user_namespace_prefix,
    user_namespaces_work,
    wait_until,
)

REQUIRED_PROGRAMS = ("initdb", "pg_ctl", "postgres", "pg_isready", "psql")
DEBIAN_LIB_ROOT = Path("/usr/lib/postgresql")
CONF_NAME = "fiberstack.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_NAME}'  # added by fiberstack.devstack\n"
START_TIMEOUT = 60


def _complete(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) and (bindir / name).is_file() for name in REQUIRED_PROGRAMS)


def bindir_version(bindir: Path, lib_root: Path = DEBIAN_LIB_ROOT) -> str | None:
    """Major version of the binaries in `bindir`; free for Debian's versioned directories."""
    if bindir.parent.parent == lib_root:
        return bindir.parent.name
    try:
        output = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_pg_version(output)


def discover_bindir(
    path_env: str | None,
    lib_root: Path = DEBIAN_LIB_ROOT,
    prefer_major: str | None = None,
    version_of: Callable[[Path], str | None] = bindir_version,
) -> Path | None:
    """Directory holding initdb, pg_ctl, postgres, pg_isready and psql.

    PATH first (its pg_ctl resolved through symlinks, so /usr/local/bin/pg_ctl -> .../15/bin finds
    its siblings), then Debian's /usr/lib/postgresql/<version>/bin, highest version first. Debian
    keeps server binaries out of PATH, which is why the second place matters. When an existing
    data directory needs a given major version, a directory of that version wins.
    """
    candidates: list[Path] = []
    pg_ctl = shutil.which("pg_ctl", path=path_env)
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    if lib_root.is_dir():
        versioned = sorted(lib_root.iterdir(), key=lambda p: version_key(p.name), reverse=True)
        candidates += [d / "bin" for d in versioned]
    usable: list[Path] = []
    for candidate in candidates:
        if candidate not in usable and _complete(candidate):
            usable.append(candidate)
    if not usable:
        return None
    if prefer_major is not None:
        for candidate in usable:
            if version_of(candidate) == prefer_major:
                return candidate
    return usable[0]


@dataclass(frozen=True)
class Privileges:
    """How PostgreSQL programs are run: directly, or (as root) through a prefix as another user.

    `chown_to` is set when the private directories must belong to that user (the runuser/setpriv
    way); the user-namespace way keeps them owned by root.
    """

    prefix: tuple[str, ...] = ()
    chown_to: ServiceUser | None = None
    description: str = ""


def choose_privileges(layout: Layout) -> Privileges:
    """PostgreSQL refuses to run as root, so root needs an unprivileged identity for it."""
    if not is_root():
        return Privileges()
    user = pick_service_user()
    data_owner = layout.pg_data.stat().st_uid if layout.pg_data.exists() else None
    blocked = first_blocked_ancestor(layout.pg_base, user.uid, user.groups)
    # An existing root-owned data directory was made through a user namespace; keep doing that.
    if blocked is None and data_owner != 0:
        prefix = drop_privileges_prefix(
            user,
            have_runuser=shutil.which("runuser") is not None,
            have_setpriv=shutil.which("setpriv") is not None,
        )
        return Privileges(tuple(prefix), chown_to=user, description=f"as user {user.name!r}")
    if user_namespaces_work(user):
        return Privileges(
            tuple(user_namespace_prefix(user)), description=f"as uid {user.uid} in a user namespace"
        )
    reason = (
        f"{blocked} is not searchable by {user.name!r} (mode {blocked.stat().st_mode & 0o777:o})"
        if blocked is not None
        else f"{layout.pg_data} belongs to root"
    )
    raise DevstackError(
        "PostgreSQL refuses to run as root, so devstack runs it as the unprivileged user "
        f"{user.name!r}, but {reason}, and this machine does not allow user namespaces as a way "
        "around it. Either put the checkout in a directory every user can reach (e.g. /srv or "
        "/opt), run as a normal user, or set DATABASE_URL to an existing PostgreSQL server."
    )


class PostgresCluster:
    """Create-once, start-if-needed, reuse-if-running PostgreSQL cluster in var/postgres."""

    def __init__(self, layout: Layout, port: int) -> None:
        self.layout = layout
        self.port = port

    # -- inspection ---------------------------------------------------------------------------

    def running(self) -> PostmasterPid | None:
        """The live postmaster's pid-file contents, or None when no server runs on this data dir."""
        try:
            info = parse_postmaster_pid((self.layout.pg_data / "postmaster.pid").read_text())
        except OSError:
            return None
        if info is None or not pid_alive(info.pid, "postgres"):
            return None
        return info

    def url(self, port: int | None = None) -> str:
        """The owner's URL: migrations, the test suite (which creates databases), developer tools."""
        return database_url(port or self.port)

    def app_url(self, port: int | None = None) -> str:
        """The app role's URL: what `make run`'s web, worker and beat connect as."""
        return database_url(port or self.port, user=PG_APP_USER)

    def status(self) -> str:
        info = self.running()
        if info is not None:
            where = f"{LOCALHOST}:{info.port or self.port}"
            return f"running (pid {info.pid}) on {where}, data in {self.layout.pg_data}"
        if (self.layout.pg_data / "PG_VERSION").exists():
            return f"stopped (data in {self.layout.pg_data})"
        return "not created yet"

    # -- lifecycle ----------------------------------------------------------------------------

    def ensure(self) -> str:
        """Make sure the cluster and both roles exist and it is up, then return the owner's URL."""
        info = self.running()
        bindir = self._bindir()
        if info is None:
            self._start(bindir)
            port = self.port
        else:
            port = info.port or self.port
            if port != self.port:
                say(f"PostgreSQL already runs on port {port}; the new port {self.port} applies after `stop`")
        if not wait_until(lambda: self._ready(bindir, port), START_TIMEOUT):
            raise DevstackError(
                f"PostgreSQL on {LOCALHOST}:{port} does not accept connections after {START_TIMEOUT}s.\n"
                f"  last lines of {self.layout.pg_log}:\n{tail(self.layout.pg_log)}"
            )
        self._create_database(bindir, port)
        self._create_app_role(bindir, port)
        self.port = port
        if info is None:
            version = bindir_version(bindir) or ""
            say(f"PostgreSQL {version} started on {LOCALHOST}:{port} ({self.layout.pg_data})")
        else:
            say(f"PostgreSQL already running on {LOCALHOST}:{port} (pid {info.pid})")
        return self.url(port)

    def stop(self, timeout: float = 60) -> bool:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit).

        Signalling the postmaster directly, rather than through `pg_ctl stop`, works the same for
        every way it may have been started (own user, runuser, user namespace).
        """
        info = self.running()
        if info is None:
            return False
        os.kill(info.pid, signal.SIGINT)
        if not wait_until(lambda: not pid_alive(info.pid, "postgres"), timeout):
            os.kill(info.pid, signal.SIGQUIT)  # immediate shutdown; crash recovery on next start
            wait_until(lambda: not pid_alive(info.pid, "postgres"), 10)
        return True

    # -- steps --------------------------------------------------------------------------------

    def _bindir(self) -> Path:
        version_file = self.layout.pg_data / "PG_VERSION"
        prefer = version_file.read_text().strip() if version_file.exists() else None
        bindir = discover_bindir(os.environ.get("PATH"), prefer_major=prefer)
        if bindir is None and is_root():
            apt_install(["postgresql"], "PostgreSQL server binaries not found")
            bindir = discover_bindir(os.environ.get("PATH"), prefer_major=prefer)
        if bindir is None:
            raise DevstackError(
                "PostgreSQL server binaries (" + ", ".join(REQUIRED_PROGRAMS) + ") were not found in PATH "
                f"or {DEBIAN_LIB_ROOT}/*/bin. Install them (Debian/Ubuntu: `sudo apt-get install "
                "postgresql`; macOS: `brew install postgresql@16`) or set DATABASE_URL to an existing server."
            )
        found = bindir_version(bindir)
        if prefer is not None and found != prefer:
            raise DevstackError(
                f"{self.layout.pg_data} was created by PostgreSQL {prefer}, but the binaries found "
                f"({bindir}) are version {found}. Install PostgreSQL {prefer}, or run `make clean` "
                "to delete the development database and start over."
            )
        return bindir

    def _prepare_dirs(self, privileges: Privileges) -> None:
        for directory in (self.layout.pg_base, self.layout.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.layout.pg_log.touch(exist_ok=True)
        owner = privileges.chown_to
        if owner is not None:
            # Only what PostgreSQL writes to changes hands; the rest of var/ stays with the caller.
            for path in (self.layout.pg_base, self.layout.run_dir, self.layout.pg_log):
                os.chown(path, owner.uid, owner.gid)
            if self.layout.pg_data.exists():
                os.chown(self.layout.pg_data, owner.uid, owner.gid)
        os.chmod(self.layout.pg_base, 0o700)

    def _start(self, bindir: Path) -> None:
        self.port = port_for_new_server(self.port, "FIBERSTACK_PG_PORT", say)
        # Create the directories before judging whether the postgres user can reach them, so a
        # restrictive umask on a fresh var/ is caught by the check rather than by initdb.
        for directory in (self.layout.pg_base, self.layout.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        privileges = choose_privileges(self.layout)
        self._prepare_dirs(privileges)
        prefix = list(privileges.prefix)
        if privileges.description:
            say(f"running PostgreSQL {privileges.description} (it refuses to run as root)")
        if not (self.layout.pg_data / "PG_VERSION").exists():
            self._initdb(bindir, prefix, privileges)
        self._write_conf(bindir, privileges)
        run_checked(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "start",
                "--silent",
                "--wait",
                f"--timeout={START_TIMEOUT}",
                "-D",
                str(self.layout.pg_data),
                "-l",
                str(self.layout.pg_log),
            ],
            what="starting PostgreSQL",
            cwd=self.layout.pg_base,
            log=self.layout.pg_log,
            timeout=START_TIMEOUT + 30,
            new_session=True,  # Ctrl-C on `make run` must not reach the server
        )

    def _initdb(self, bindir: Path, prefix: Sequence[str], privileges: Privileges) -> None:
        say(f"creating the PostgreSQL cluster in {self.layout.pg_data}")
        self.layout.pg_data.mkdir(mode=0o700, exist_ok=True)
        if privileges.chown_to is not None:
            os.chown(self.layout.pg_data, privileges.chown_to.uid, privileges.chown_to.gid)
        # C.UTF-8 is built into glibc >= 2.35 and musl; elsewhere (macOS) plain C is the safe choice.
        locale = "C.UTF-8" if sys.platform.startswith("linux") else "C"
        run_checked(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(self.layout.pg_data),
                f"--username={PG_SUPERUSER}",
                "--auth=trust",  # loopback-only development cluster, password-less by design
                "--encoding=UTF8",
                f"--locale={locale}",
                "--no-sync",
            ],
            what="initdb",
            cwd=self.layout.pg_base,
        )
        conf = self.layout.pg_data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\n" + INCLUDE_LINE)

    def _write_conf(self, bindir: Path, privileges: Privileges) -> None:
        socket_dir: Path | None = self.layout.run_dir
        if not socket_dir_fits(self.layout.run_dir, self.port):
            socket_dir = None  # checkout path too long for a unix socket; TCP alone is enough
        target = self.layout.pg_data / CONF_NAME
        target.write_text(render_postgres_conf(self.port, socket_dir, timescaledb=has_timescaledb(bindir),
                                               memory_bytes=machine_memory_bytes()))
        if privileges.chown_to is not None:
            os.chown(target, privileges.chown_to.uid, privileges.chown_to.gid)

    def _ready(self, bindir: Path, port: int) -> bool:
        result = subprocess.run(
            [
                str(bindir / "pg_isready"),
                "-q",
                "-h",
                LOCALHOST,
                "-p",
                str(port),
                "-U",
                PG_SUPERUSER,
                "-t",
                "2",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _create_database(self, bindir: Path, port: int) -> None:
        psql = [str(bindir / "psql"), "-X", "-q", "-At", "-h", LOCALHOST, "-p", str(port), "-U", PG_SUPERUSER]
        exists = run_checked(
            [*psql, "-d", "postgres", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],  # noqa: S608 - a constant
            what="checking for the fiberstack database",
        )
        if exists.stdout.strip() != "1":
            run_checked([*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{PG_DATABASE}"'], what="createdb")
            say(f"created database {PG_DATABASE!r}")

    def _create_app_role(self, bindir: Path, port: int) -> None:
        """The role the product's processes log in as (no password: the cluster trusts loopback). Its
        grants come after each migrate, from `manage.py grant_app_role`, as in production."""
        psql = [str(bindir / "psql"), "-X", "-q", "-At", "-h", LOCALHOST, "-p", str(port), "-U", PG_SUPERUSER]
        run_checked([*psql, "-d", "postgres", "-c", create_app_role_sql(PG_APP_USER)], what="creating the app role")


def has_timescaledb(bindir: Path) -> bool:
    """Whether the TimescaleDB extension is installed for these binaries; if so it is preloaded, so
    the development stack exercises the same hypertable code path as production."""
    libdirs = [bindir.parent / "lib", bindir.parent / "lib" / "postgresql"]
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        try:
            out = subprocess.run(
                [str(pg_config), "--pkglibdir"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out:
            libdirs.insert(0, Path(out))
    return any(
        any(d.glob("timescaledb*.so")) or any(d.glob("timescaledb*.dylib")) for d in libdirs if d.is_dir()
    )
