"""The private cluster has the two roles of a hardened database, and `make run` uses each for its job.

The first test starts a real, throw-away PostgreSQL cluster (a few seconds); the others check how the
environment of migrate, the test suite and the product's processes is put together."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fiberstack.devstack import cli
from fiberstack.devstack.config import PG_APP_USER, PG_SUPERUSER, Layout, project_root
from fiberstack.devstack.postgres import PostgresCluster, discover_bindir
from fiberstack.devstack.system import free_port
from fiberstack.webserver import cpu_count


@pytest.fixture
def private_cluster() -> Iterator[PostgresCluster]:
    if discover_bindir(os.environ.get("PATH")) is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    # Under the checkout's var/ (not tmp_path): as root the server runs as another user, who must be
    # able to reach the directory, and var/ is where the devstack already proved it can.
    var = project_root() / "var" / f"test-cluster-{uuid.uuid4().hex[:8]}"
    cluster = PostgresCluster(Layout(project_root(), var_dir=var), free_port())
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(var, ignore_errors=True)


def test_private_cluster_creates_the_owner_and_an_app_role_without_powers(private_cluster: PostgresCluster) -> None:
    owner_url = private_cluster.ensure()
    assert private_cluster.ensure() == owner_url  # reuse-if-running finds both roles there
    with psycopg.connect(owner_url) as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
            "WHERE rolname IN (%s, %s) ORDER BY rolname", [PG_SUPERUSER, PG_APP_USER]
        ).fetchall()
        owner_of_database = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
    assert roles == [(PG_SUPERUSER, True, True, True, True), (PG_APP_USER, False, False, False, True)]
    assert owner_of_database == PG_SUPERUSER
    with psycopg.connect(private_cluster.app_url()) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == PG_APP_USER


def _stack(owner: str, app: str) -> dict[str, str]:
    return {"DATABASE_URL": app, "DATABASE_OWNER_URL": owner, "REDIS_URL": "redis://x/0"}


def test_the_product_never_sees_the_owner_url_and_migrate_uses_it() -> None:
    stack = _stack("postgres://fiberstack@h:1/fiberstack", "postgres://fiberstack_app@h:1/fiberstack")
    assert cli.app_env(stack) == {"DATABASE_URL": stack["DATABASE_URL"], "REDIS_URL": "redis://x/0"}
    assert cli.owner_env(stack) == {"DATABASE_URL": stack["DATABASE_OWNER_URL"], "REDIS_URL": "redis://x/0"}


def test_migrate_grants_the_app_role_as_the_owner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    steps: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(cli, "run_step", lambda _layout, env, *args: steps.append((env["DATABASE_URL"], args)))
    stack = _stack("postgres://own%40er:pw@h:1/db", "postgres://app:pw@h:1/db")
    cli.migrate(Layout(tmp_path), cli.owner_env(stack), cli.app_env(stack))
    owner = stack["DATABASE_OWNER_URL"]
    assert steps == [(owner, ("migrate", "--noinput")), (owner, ("grant_app_role", "app"))]


def test_one_role_for_everything_skips_the_grants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    steps: list[tuple[str, ...]] = []
    monkeypatch.setattr(cli, "run_step", lambda _layout, _env, *args: steps.append(args))
    monkeypatch.setenv("DATABASE_URL", "postgres://solo@h:1/db")
    monkeypatch.delenv("DATABASE_OWNER_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://h:2/0")
    stack = cli.stack_env(Layout(tmp_path), redis_db=0)
    cli.migrate(Layout(tmp_path), cli.owner_env(stack), cli.app_env(stack))
    assert steps == [("migrate", "--noinput")]
    assert "not hardened" in capsys.readouterr().out


def test_make_run_starts_one_daphne_per_worker_on_one_inherited_socket(tmp_path: Path) -> None:
    started: list[tuple[str, list[str], tuple[int, ...]]] = []

    class Recorder:
        def start(self, name: str, argv: list[str], _env: dict, _cwd: Path, pass_fds: tuple[int, ...] = ()) -> None:
            started.append((name, argv, tuple(pass_fds)))

    port = free_port()
    cli.start_web(Recorder(), {}, tmp_path, port, 3)  # type: ignore[arg-type]
    assert [name for name, _, _ in started] == ["web1", "web2", "web3"]
    fds = {fds for _, _, fds in started}
    assert len(fds) == 1 and all(argv[argv.index("--fd") + 1] == str(next(iter(fds))[0]) for _, argv, _ in started)
    # devstack's own copy is closed: once the workers stop, the port is free again.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_web_workers_follow_the_cores_unless_told() -> None:
    assert cli.web_workers({}) == cpu_count()
    assert cli.web_workers({"WEB_WORKERS": "5"}) == 5
    with pytest.raises(cli.DevstackError, match="WEB_WORKERS"):
        cli.web_workers({"WEB_WORKERS": "-2"})
