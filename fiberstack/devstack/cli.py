"""Sub-commands of `python -m fiberstack.devstack`: run, test, stop, status, env, exec."""

# ruff: noqa: S603
# Subprocesses are manage.py, pytest, daphne and celery from this project's own interpreter.

from __future__ import annotations

import http.client
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fiberstack.celery_routes import QUEUES
from fiberstack.devstack import syslog_ng
from fiberstack.devstack.config import (
    DEFAULT_PG_PORT,
    DEFAULT_REDIS_PORT,
    LOCALHOST,
    REDIS_DB_RUN,
    REDIS_DB_TEST,
    SETTINGS_DEV,
    SETTINGS_TEST,
    Layout,
    parse_shell_env,
    port_from_env,
    project_root,
)
from fiberstack.devstack.postgres import PostgresCluster
from fiberstack.devstack.processes import Supervisor
from fiberstack.devstack.redis import RedisServer
from fiberstack.devstack.system import (
    DevstackError,
    apt_install,
    exclusive_lock,
    find_program,
    installed_packages,
    is_root,
    port_accepts,
    say,
)
from fiberstack.webserver import cpu_count, daphne_command, listen, worker_count

PYTEST_NO_TESTS_COLLECTED = 5
WEB_START_TIMEOUT = 90


def layout_from_env() -> Layout:
    """var/ of this checkout, or FIBERSTACK_VAR_DIR, which the Django settings honour as well."""
    root = project_root()
    var = os.environ.get("FIBERSTACK_VAR_DIR")
    return Layout(root=root, var_dir=Path(var).absolute() if var else None)


def services(layout: Layout) -> tuple[PostgresCluster, RedisServer]:
    return (
        PostgresCluster(layout, port_from_env(os.environ, "FIBERSTACK_PG_PORT", DEFAULT_PG_PORT)),
        RedisServer(layout, port_from_env(os.environ, "FIBERSTACK_REDIS_PORT", DEFAULT_REDIS_PORT)),
    )


def stack_env(layout: Layout, *, redis_db: int) -> dict[str, str]:
    """The environment for the product's processes: external services when DATABASE_URL /
    REDIS_URL are set, otherwise the private ones, started on demand.

    DATABASE_URL is the app role and DATABASE_OWNER_URL the owner (docs/database-roles.md); pass the
    result through `owner_env` or `app_env` before starting anything. An external DATABASE_URL without
    DATABASE_OWNER_URL is the non-hardened mode: one role migrates and runs the product."""
    env = dict(os.environ)
    postgres, redis = services(layout)
    with exclusive_lock(layout.lock):
        if env.get("DATABASE_URL"):
            say("using DATABASE_URL from the environment")
            if not env.get("DATABASE_OWNER_URL"):
                env["DATABASE_OWNER_URL"] = env["DATABASE_URL"]
        else:
            env["DATABASE_OWNER_URL"] = postgres.ensure()
            env["DATABASE_URL"] = postgres.app_url()
        if env.get("REDIS_URL"):
            say("using REDIS_URL from the environment")
        else:
            env["REDIS_URL"] = redis.ensure(redis_db)
    env.setdefault("FIBERSTACK_VAR_DIR", str(layout.var))
    return env


def owner_env(env: dict[str, str]) -> dict[str, str]:
    """For migrate, grants, the test suite and developer tools: DATABASE_URL is the owner's."""
    owned = dict(env)
    owned["DATABASE_URL"] = owned.pop("DATABASE_OWNER_URL", None) or env["DATABASE_URL"]
    return owned


def app_env(env: dict[str, str]) -> dict[str, str]:
    """For the product's processes: the app role only; they never see the owner's URL."""
    app = dict(env)
    app.pop("DATABASE_OWNER_URL", None)
    return app


def url_user(url: str) -> str:
    return unquote(urlsplit(url).username or "")


def migrate(layout: Layout, owner: dict[str, str], app: dict[str, str]) -> None:
    """Migrate as the owner, then grant the app role (skipped when one role does everything)."""
    run_step(layout, owner, "migrate", "--noinput")
    owner_user, app_user = url_user(owner["DATABASE_URL"]), url_user(app["DATABASE_URL"])
    if owner_user == app_user:
        say(f"the product connects as the owner {owner_user!r}: not hardened (set DATABASE_OWNER_URL to "
            "migrate as another role; docs/database-roles.md)")
        return
    run_step(layout, owner, "grant_app_role", app_user)


def manage(layout: Layout, *args: str) -> list[str]:
    return [sys.executable, str(layout.root / "manage.py"), *args]


def run_step(layout: Layout, env: dict[str, str], *args: str) -> None:
    say("manage.py " + " ".join(args))
    code = subprocess.run(
        manage(layout, *args), cwd=layout.root, env=env, stdin=subprocess.DEVNULL, check=False
    )
    if code.returncode != 0:
        raise DevstackError(
            f"`manage.py {' '.join(args)}` failed with exit code {code.returncode} (output above)"
        )


def start_quiet(layout: Layout, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start a manage.py command with captured output. collectstatic and the `help agent` probe
    need no database, so they run while migrate and seed_demo do: each manage.py start costs
    Django's whole import time, and that adds up on a slow laptop."""
    return subprocess.Popen(
        manage(layout, *args),
        cwd=layout.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_collectstatic(process: subprocess.Popen[str]) -> None:
    """Report collectstatic. Without STATIC_ROOT Django raises ImproperlyConfigured naming it,
    which here only means there is nothing to collect."""
    output = process.communicate()[0].strip()
    if process.returncode == 0:
        say("collectstatic: " + (output.splitlines()[-1] if output else "done"))
    elif "STATIC_ROOT" in output or "Unknown command" in output:
        say("collectstatic skipped (STATIC_ROOT not configured)")
    else:
        print(output, file=sys.stderr)
        raise DevstackError(f"`manage.py collectstatic` failed with exit code {process.returncode}")


def agent_command(layout: Layout, probe: subprocess.Popen[str], url: str) -> tuple[list[str], str] | None:
    """The reference agent's command line and token, when `manage.py help agent` (the probe) succeeded and
    seed_demo wrote a token; None otherwise (the product runs fine without it, there is just no
    live demo data). The token travels in the agent's environment, not on its command line, where `ps`
    would show it to every user of the machine."""
    probe.communicate()
    if probe.returncode != 0:
        say("no `agent` management command yet; not starting the reference agent")
        return None
    try:
        token = parse_shell_env(layout.credentials.read_text()).get("FIBERSTACK_AGENT_TOKEN")
    except OSError:
        token = None
    if not token:
        say(f"no FIBERSTACK_AGENT_TOKEN in {layout.credentials}; not starting the reference agent")
        return None
    return manage(layout, "agent", "--url", url, "--interval", "10"), token


def cmd_run(_args: Sequence[str]) -> int:
    layout = layout_from_env()
    stack = stack_env(layout, redis_db=REDIS_DB_RUN)
    # fiberstack/celery.py has already done setdefault(dev) in this process, so an explicit
    # DJANGO_SETTINGS_MODULE from the caller survives and the default is dev either way.
    stack.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_DEV)
    stack["PYTHONUNBUFFERED"] = "1"  # children's lines appear as they happen, not per 8 KiB block
    owner, env = owner_env(stack), app_env(stack)
    port = port_from_env(env, "PORT", 8000)
    if port_accepts(port):
        raise DevstackError(
            f"port {port} is already in use; stop whatever uses it or run `PORT=<port> make run`"
        )

    static = start_quiet(layout, env, "collectstatic", "--noinput")
    probe = start_quiet(layout, env, "help", "agent")
    try:
        migrate(layout, owner, env)
        run_step(layout, env, "seed_demo")
        finish_collectstatic(static)
        url = f"http://{LOCALHOST}:{port}"
        agent = agent_command(layout, probe, url)
    finally:
        for helper in (static, probe):
            if helper.poll() is None:
                helper.kill()
                helper.wait()

    python = sys.executable
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    start_web(supervisor, env, layout.root, port, web_workers(env))
    supervisor.start(
        "worker",
        worker_command(python),
        env,
        layout.root,
    )
    supervisor.start(
        "beat",
        [
            python,
            "-m",
            "celery",
            "-A",
            "fiberstack",
            "beat",
            "-l",
            "info",
            "--schedule",
            str(layout.beat_schedule),
        ],
        env,
        layout.root,
    )
    if not supervisor.wait_for(lambda: web_answers(port), WEB_START_TIMEOUT):
        if supervisor.failure is None and supervisor.stop_signal is None:
            supervisor.failure = f"web did not answer on port {port} within {WEB_START_TIMEOUT}s"
        return supervisor.shutdown()
    if agent is not None:
        argv, token = agent
        supervisor.start("agent", argv, {**env, "FIBERSTACK_AGENT_TOKEN": token}, layout.root)
    user = _admin_user(layout)
    supervisor.write(
        "\n"
        f"devstack: FiberStack is running at {url}/  (admin: {url}/admin/)\n"
        f"devstack: log in as {user!r}; the password and agent token are in {_shown(layout.credentials)}\n"
        "devstack: Ctrl-C stops the processes; PostgreSQL and Redis keep running "
        "(`make stop` stops them)\n\n"
    )
    return supervisor.supervise()


def web_workers(env: Mapping[str, str]) -> int:
    """As many daphne processes as cores (WEB_WORKERS overrides), as production runs them."""
    try:
        return worker_count(env.get("WEB_WORKERS"))
    except ValueError as exc:
        raise DevstackError(str(exc)) from None


def start_web(supervisor: Supervisor, env: dict[str, str], cwd: Path, port: int, workers: int) -> None:
    """Bind the port once and start `workers` daphne processes on it (fiberstack/webserver.py). The
    children hold the socket; devstack's copy is closed, so the port is free again once they stop."""
    try:
        sock = listen(LOCALHOST, port)
    except OSError as exc:
        raise DevstackError(f"cannot listen on {LOCALHOST}:{port}: {exc.strerror}") from exc
    with sock:
        command = daphne_command(sys.executable, sock.fileno())
        for index in range(1, workers + 1):
            supervisor.start(f"web{index}" if workers > 1 else "web", command, env, cwd, pass_fds=(sock.fileno(),))
    say(f"{workers} daphne worker{'s' if workers > 1 else ''} on {LOCALHOST}:{port}")


def web_answers(port: int) -> bool:
    """The kernel queues connections on the bound socket before any worker runs, so readiness is an
    HTTP answer, not an accepted connection."""
    connection = http.client.HTTPConnection(LOCALHOST, port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def _admin_user(layout: Layout) -> str:
    try:
        return parse_shell_env(layout.credentials.read_text()).get("FIBERSTACK_ADMIN_USER", "admin")
    except OSError:
        return "admin"


def _shown(path: Path) -> str:
    """A path relative to the current directory when it is inside it (shorter, copy-pasteable)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def default_pytest_args(cpus: int, have_xdist: bool) -> list[str]:
    """Two xdist workers when they can help: the suite is database-bound, and more workers than
    that mostly contend for the one PostgreSQL instance on a laptop or CI runner."""
    return ["-n", "2", "--dist", "loadgroup"] if have_xdist and cpus > 1 else []


def worker_command(python: str) -> list[str]:
    """One development worker for every queue (production may run a worker per queue)."""
    return [python, "-m", "celery", "-A", "fiberstack", "worker", "-l", "info", "--concurrency", "2",
            "-Q", ",".join(QUEUES)]


# Real agent clients some tests drive end to end (tests skip, naming the package, where one is missing):
# program -> the Debian packages it needs. collectd-core rather than collectd, which pulls in the libraries
# of every plugin (hundreds of MB); the plugins' libraries are only Suggests of collectd-core, so the ones
# of write_http (the JSON writer and libcurl) are listed here.
TEST_CLIENT_PACKAGES = {
    "influx": ("influxdb-client",),
    "collectd": ("collectd-core", "libyajl2", "libcurl3-gnutls"),
    "prometheus": ("prometheus",),
    "prometheus-alertmanager": ("prometheus-alertmanager",),
    # syslog-ng conflicts with rsyslog as a package: it is unpacked under var/ instead (devstack/syslog_ng.py).
    "rsyslogd": ("rsyslog", "rsyslog-elasticsearch"),
    # The browser tests (Playwright for Python) drive Debian's Chromium; no `playwright install` download.
    "chromium": ("chromium",),
}


def missing_test_clients(
    installed: Callable[[Sequence[str]], set[str] | None] = installed_packages,
    find: Callable[[str], str | None] = find_program,
) -> list[str]:
    """The packages of TEST_CLIENT_PACKAGES that dpkg does not have installed, in table order. Packages,
    not programs, are checked: collectd-core alone has a collectd binary whose write_http cannot load.
    Without dpkg (not Debian) only the programs can be looked for."""
    wanted = [package for packages in TEST_CLIENT_PACKAGES.values() for package in packages]
    present = installed(wanted)
    if present is None:
        return [package for program, packages in TEST_CLIENT_PACKAGES.items() if find(program) is None
                for package in packages]
    return [package for package in dict.fromkeys(wanted) if package not in present]


def install_test_clients() -> None:
    """Best effort: as root on Debian, install the agent clients the suite drives for real. The tests
    start them themselves, so the packages' own daemons are neither started nor enabled."""
    if not is_root():
        return
    missing = missing_test_clients()
    if not missing:
        return
    try:
        apt_install(missing, "test clients missing", start_services=False)
    except (DevstackError, OSError) as exc:
        say(f"warning: {exc}; the tests that need {', '.join(missing)} will be skipped")


def cmd_test(args: Sequence[str]) -> int:
    install_test_clients()
    layout = layout_from_env()
    why_not = syslog_ng.unpack(layout)
    if why_not:
        say(f"warning: {why_not}; the syslog-ng tests will be skipped")
    # pytest-django creates the test databases, so the suite connects as the owner; the tests that
    # need the app role create and grant one (tests/core/test_database_roles.py).
    env = owner_env(stack_env(layout, redis_db=REDIS_DB_TEST))
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS_TEST
    pytest_args = list(args) or default_pytest_args(
        cpu_count(), importlib.util.find_spec("xdist") is not None
    )
    command = [sys.executable, "-m", "pytest", *pytest_args]
    say(" ".join(shlex.quote(part) for part in ["pytest", *pytest_args]))
    process = subprocess.Popen(command, cwd=layout.root, env=env)
    # pytest handles Ctrl-C itself (it reports what ran); devstack only waits for its verdict.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if code == PYTEST_NO_TESTS_COLLECTED:
        print("devstack: error: pytest collected no tests; treating that as a failure", file=sys.stderr)
        return 1
    return code


def cmd_stop(_args: Sequence[str]) -> int:
    layout = layout_from_env()
    postgres, redis = services(layout)
    with exclusive_lock(layout.lock):
        say("PostgreSQL stopped" if postgres.stop() else "PostgreSQL was not running")
        say("Redis stopped" if redis.stop() else "Redis was not running")
    return 0


def cmd_status(_args: Sequence[str]) -> int:
    layout = layout_from_env()
    postgres, redis = services(layout)
    print(f"PostgreSQL: {postgres.status()}")
    print(f"Redis:      {redis.status()}")
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name):
            print(f"({name} is set, so `run` and `test` use that instead of the private instance)")
    return 0


def cmd_env(_args: Sequence[str]) -> int:
    """Print shell exports, for `eval "$(python -m fiberstack.devstack env)"` before manage.py. Like
    `exec`, a developer's shell gets the owner's URL: migrate, dbshell and the benchmarks need it."""
    env = owner_env(_quietly(lambda: stack_env(layout_from_env(), redis_db=REDIS_DB_RUN)))
    env.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_DEV)
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "FIBERSTACK_VAR_DIR"):
        print(f"export {name}={shlex.quote(env[name])}")
    return 0


def _quietly(build: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Run `build` with progress output sent to stderr, so stdout stays eval-able."""
    stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        return build()
    finally:
        sys.stdout = stdout


def cmd_exec(args: Sequence[str]) -> int:
    """Run a command with the stack's environment (used by `make bench`)."""
    if not args:
        raise DevstackError("usage: python -m fiberstack.devstack exec COMMAND [ARG...]")
    env = owner_env(stack_env(layout_from_env(), redis_db=REDIS_DB_RUN))
    env.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_DEV)
    sys.stdout.flush()
    try:
        os.execvpe(args[0], list(args), env)  # noqa: S606 - replacing ourselves is the point
    except OSError as exc:
        raise DevstackError(f"cannot run {args[0]!r}: {exc.strerror}") from exc
    return 127  # not reached


COMMANDS = {
    "run": cmd_run,
    "test": cmd_test,
    "stop": cmd_stop,
    "status": cmd_status,
    "env": cmd_env,
    "exec": cmd_exec,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(sys.modules["fiberstack.devstack"].__doc__, file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"], ["help"]) else 2
    try:
        return COMMANDS[args[0]](args[1:])
    except DevstackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("devstack: interrupted", file=sys.stderr)
        return 130
