"""Operating-system helpers: privilege dropping for PostgreSQL, package installs, waiting, locking."""

# ruff: noqa: S603, S607
# Every subprocess here runs a fixed program (runuser, apt-get, unshare, ...) with arguments this
# package builds itself; nothing comes from untrusted input, and PATH lookup is the point.

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class DevstackError(Exception):
    """A failure the developer can act on; printed without a traceback."""


def say(message: str) -> None:
    """Progress output, prefixed so it stands apart from the children's output."""
    print(f"devstack: {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class ServiceUser:
    """The unprivileged account PostgreSQL runs as when devstack itself runs as root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def pick_service_user(candidates: Sequence[str] = ("postgres", "nobody")) -> ServiceUser:
    """First existing account of `candidates`; `postgres` is what the Debian package creates."""
    for name in candidates:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        groups = tuple(sorted({entry.pw_gid, *os.getgrouplist(name, entry.pw_gid)}))
        return ServiceUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, groups=groups)
    raise DevstackError(
        f"running as root, but none of the users {', '.join(candidates)} exists to run PostgreSQL as "
        "(PostgreSQL refuses to run as root). Create one (`useradd --system postgres`) or run as a "
        "normal user."
    )


def drop_privileges_prefix(user: ServiceUser, *, have_runuser: bool, have_setpriv: bool) -> list[str]:
    """Command prefix that runs the rest of the command line as `user` (root only).

    runuser is util-linux's su without PAM authentication and is on every Debian; setpriv is the
    fallback for minimal images that ship it alone.
    """
    if have_runuser:
        return ["runuser", "-u", user.name, "--"]
    if have_setpriv:
        return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--"]
    raise DevstackError("running as root, but neither `runuser` nor `setpriv` is installed (util-linux)")


def user_namespace_prefix(user: ServiceUser) -> list[str]:
    """Command prefix that runs a command as `user`'s uid *inside* a new user namespace, mapped to
    root outside. PostgreSQL then sees a non-root effective uid that owns the root-owned data
    directory, while the kernel checks paths with root's own permission bits. That is the way out
    when the checkout is somewhere only root can reach (e.g. under /root, mode 0700)."""
    return ["unshare", "--user", f"--map-user={user.uid}", f"--map-group={user.gid}", "--"]


def can_traverse(mode: int, owner: int, group: int, uid: int, groups: Sequence[int]) -> bool:
    """Whether a user may search (x) a directory with these stat fields (classic bits; no ACLs)."""
    if uid == 0:
        return True
    if owner == uid:
        return bool(mode & stat.S_IXUSR)
    if group in groups:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def first_blocked_ancestor(
    path: Path, uid: int, groups: Sequence[int], lookup: Callable[[Path], os.stat_result] = os.stat
) -> Path | None:
    """The first directory from / down to `path` (inclusive, for those that exist) that `uid`
    cannot enter, or None when the whole path is reachable."""
    path = path.absolute()
    for directory in [*reversed(path.parents), path]:
        try:
            st = lookup(directory)
        except FileNotFoundError:
            break
        if not can_traverse(st.st_mode, st.st_uid, st.st_gid, uid, groups):
            return directory
    return None


def user_namespaces_work(user: ServiceUser) -> bool:
    """Whether this kernel/container lets root create a user namespace (Docker's default seccomp
    profile, for one, may forbid it)."""
    if shutil.which("unshare") is None:
        return False
    try:
        result = subprocess.run(
            [*user_namespace_prefix(user), "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


#: Debian's hook that invoke-rc.d and deb-systemd-invoke ask before starting a service (man invoke-rc.d).
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
#: Exit status 101 of policy-rc.d means "action forbidden": the package is configured, nothing starts.
POLICY_FORBIDDEN = 101
_FORBID_STARTS = (
    "#!/bin/sh\n"
    "# Written by FiberStack's devstack for the length of one apt-get install, so that the agents the\n"
    "# tests run themselves (collectd, prometheus) are not also started as system daemons.\n"
    f"exit {POLICY_FORBIDDEN}\n"
)


def policy_forbids_starts(policy: Path) -> bool:
    """Whether an existing policy-rc.d already forbids starting services (Docker images ship one)."""
    try:
        result = subprocess.run([str(policy), "fiberstack-probe", "start"], stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == POLICY_FORBIDDEN


@contextmanager
def service_starts_forbidden(policy: Path = POLICY_RC_D) -> Iterator[None]:
    """Forbid maintainer scripts to start services while the block runs: a policy-rc.d that exits 101,
    put in place only for the block. An existing policy that already forbids starts is left alone;
    another one is set aside and put back afterwards, whatever happens inside the block."""
    saved = policy.with_name(policy.name + ".fiberstack-saved")
    if saved.exists():  # left by an install that was killed inside the block: the owner's policy first
        saved.replace(policy)
    if policy.exists() and policy_forbids_starts(policy):
        yield
        return
    if policy.exists():
        policy.rename(saved)
    try:
        policy.write_text(_FORBID_STARTS)
        policy.chmod(0o755)
        yield
    finally:
        policy.unlink(missing_ok=True)
        if saved.exists():
            saved.rename(policy)


def apt_install(packages: Sequence[str], why: str, *, start_services: bool = True) -> None:
    """Install Debian packages non-interactively (root only); the one way devstack changes files
    outside the project, as the brief for `make run` on a fresh machine allows. With
    start_services=False no daemon of the packages is started (service_starts_forbidden) and, where
    systemd runs, none is enabled at boot either: for programs the tests run themselves."""
    if shutil.which("apt-get") is None:
        raise DevstackError(f"{why}, and apt-get is not available to install {' '.join(packages)}")
    say(f"{why}; installing {' '.join(packages)} with apt-get")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _apt(["apt-get", "update"], env)
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if start_services:
        _apt(install, env)
    else:
        with service_starts_forbidden():
            _apt(install, env)
        disable_boot_start(packages)
    say(f"installed {' '.join(packages)} in {time.monotonic() - started:.0f}s")


def installed_packages(packages: Sequence[str]) -> set[str] | None:
    """Which of `packages` dpkg has installed; None where there is no dpkg (not Debian)."""
    if shutil.which("dpkg-query") is None:
        return None
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n", *packages],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    # Exit status 1 only says some package is unknown; the known ones are still listed.
    return {fields[0] for fields in (line.split() for line in result.stdout.splitlines())
            if len(fields) >= 2 and fields[1] == "ii"}


def _apt(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise DevstackError(f"`{' '.join(command)}` failed with exit code {result.returncode}")


def disable_boot_start(packages: Sequence[str], systemd_dir: Path = Path("/run/systemd/system")) -> None:
    """On a systemd machine, keep the packages' services from starting at the next boot: Debian
    enables a new package's units by default. Best effort; without systemd there is nothing to do."""
    if not systemd_dir.is_dir() or shutil.which("systemctl") is None:
        return
    units = [unit for package in packages for unit in _package_units(package)]
    if units:
        subprocess.run(["systemctl", "disable", "--quiet", *units], stdin=subprocess.DEVNULL, check=False)


def _package_units(package: str) -> list[str]:
    """The systemd service units a Debian package ships (from `dpkg -L`)."""
    result = subprocess.run(["dpkg", "-L", package], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            check=False)
    return sorted({Path(line).name for line in result.stdout.splitlines()
                   if "/systemd/system/" in line and line.endswith(".service")})


#: Daemons such as collectd live in sbin, which a non-root PATH often lacks.
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def find_program(name: str) -> str | None:
    """`name` on PATH, else in the sbin directories; None when it is not installed."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)


def tail(path: Path, lines: int = 25) -> str:
    """Last lines of a log file, for error messages that must show why a server did not start."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    selected = text.splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in selected) if selected else f"    ({path} is empty)"


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_for_new_server(port: int, override_variable: str, say: Callable[[str], None]) -> int:
    """`port` if it is free; else, unless the user chose it explicitly, a free one. Another checkout's
    private server (or CI's clone beside a developer's) must not stop this one from starting."""
    if not port_accepts(port):
        return port
    if os.environ.get(override_variable):
        raise DevstackError(
            f"port {port} is already in use by another program. Stop it, or choose another port with "
            f"{override_variable}=<port>."
        )
    chosen = free_port()
    say(f"port {port} is in use (another FiberStack checkout?); using {chosen} instead")
    return chosen


def pid_alive(pid: int, expected_name: str | None = None) -> bool:
    """Whether `pid` runs, optionally checking its name so a stale pid file whose number the kernel
    has reused for another program is not mistaken for our server."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else (e.g. the postgres user when we are not root)
    try:
        # "pid (comm) STATE ...": a zombie has exited and only waits for its parent (often init,
        # after pg_ctl or redis daemonised it) to reap it.
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust the pid
    comm, _, rest = stat_line.partition("(")[2].rpartition(")")
    if rest.split()[:1] == ["Z"]:
        return False
    return expected_name is None or expected_name in comm


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise service start/stop between concurrent `make run` / `make test` invocations, so
    two of them never run initdb on the same directory at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_checked(
    command: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    log: Path | None = None,
    timeout: float = 120,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a short helper command, turning failure into a DevstackError that shows its output and,
    when given, the tail of the server log (where PostgreSQL explains most start failures)."""
    try:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=new_session,
        )
    except subprocess.TimeoutExpired as exc:
        raise DevstackError(f"{what}: `{' '.join(command)}` did not finish in {timeout:.0f}s") from exc
    except OSError as exc:
        raise DevstackError(f"{what}: cannot run `{command[0]}`: {exc.strerror}") from exc
    if result.returncode != 0:
        details = (result.stdout + result.stderr).strip()
        message = f"{what} failed (exit {result.returncode}): `{' '.join(command)}`"
        if details:
            message += "\n" + "\n".join(f"    {line}" for line in details.splitlines()[-25:])
        if log is not None:
            message += f"\n  last lines of {log}:\n{tail(log)}"
        raise DevstackError(message)
    return result


def python_executable() -> str:
    """The interpreter running devstack (the project venv's when started through make)."""
    return sys.executable
