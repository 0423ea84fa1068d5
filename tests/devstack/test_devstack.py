"""Unit tests of the developer stack's pure pieces; nothing here starts PostgreSQL or Redis."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

import pytest

from fiberstack.devstack import cli, postgres
from fiberstack.devstack.config import (
    Layout,
    database_url,
    parse_pg_version,
    parse_postmaster_pid,
    parse_shell_env,
    port_from_env,
    redis_url,
    render_postgres_conf,
    render_redis_conf,
    socket_dir_fits,
    version_key,
)
from fiberstack.devstack.postgres import choose_privileges, discover_bindir, has_timescaledb
from fiberstack.devstack.processes import Supervisor, describe_exit, line_prefix
from fiberstack.devstack.redis import configured_port
from fiberstack.devstack.system import (
    DevstackError,
    ServiceUser,
    can_traverse,
    drop_privileges_prefix,
    first_blocked_ancestor,
    user_namespace_prefix,
)

POSTGRES_USER = ServiceUser(name="postgres", uid=101, gid=104, groups=(104, 103))


# -- URLs, ports, layout ----------------------------------------------------------------------


def test_database_url_points_at_the_private_cluster_over_tcp() -> None:
    assert database_url(54329) == "postgres://fiberstack@127.0.0.1:54329/fiberstack"


def test_database_url_quotes_odd_names() -> None:
    assert database_url(5, user="a b", name="x/y") == "postgres://a%20b@127.0.0.1:5/x%2Fy"


def test_redis_url_carries_the_database_number() -> None:
    assert redis_url(63790) == "redis://127.0.0.1:63790/0"
    assert redis_url(63790, 1) == "redis://127.0.0.1:63790/1"


def test_port_from_env_uses_the_default_when_unset_or_blank() -> None:
    assert port_from_env({}, "FIBERSTACK_PG_PORT", 54329) == 54329
    assert port_from_env({"FIBERSTACK_PG_PORT": " "}, "FIBERSTACK_PG_PORT", 54329) == 54329


def test_port_from_env_reads_an_override() -> None:
    assert port_from_env({"FIBERSTACK_PG_PORT": "55000"}, "FIBERSTACK_PG_PORT", 54329) == 55000


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_port_from_env_names_the_variable_when_invalid(value: str) -> None:
    with pytest.raises(ValueError, match="FIBERSTACK_REDIS_PORT"):
        port_from_env({"FIBERSTACK_REDIS_PORT": value}, "FIBERSTACK_REDIS_PORT", 63790)


def test_layout_keeps_everything_under_var(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    for path in (layout.pg_data, layout.pg_log, layout.run_dir, layout.redis_conf, layout.credentials):
        assert path.is_relative_to(tmp_path / "var")


def test_layout_honours_an_explicit_var_dir(tmp_path: Path) -> None:
    assert Layout(tmp_path, var_dir=tmp_path / "elsewhere").pg_data == tmp_path / "elsewhere/postgres/data"


# -- config rendering -------------------------------------------------------------------------


def test_postgres_conf_listens_on_loopback_and_the_project_port(tmp_path: Path) -> None:
    conf = render_postgres_conf(54329, tmp_path / "run")
    assert "listen_addresses = '127.0.0.1'" in conf
    assert "port = 54329" in conf
    assert f"unix_socket_directories = '{tmp_path / 'run'}'" in conf
    assert "shared_preload_libraries" not in conf


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(None, 128), (0, 128), (256 * 2**20, 128), (2 * 2**30, 512), (24 * 2**30, 1024)],
)
def test_shared_buffers_are_a_quarter_of_memory_between_128_mb_and_1_gb(memory: int | None, expected: int) -> None:
    assert f"shared_buffers = {expected}MB" in render_postgres_conf(1, None, memory_bytes=memory)


def test_postgres_conf_escapes_quotes_in_the_socket_path() -> None:
    assert "unix_socket_directories = '/srv/o''brien/var/run'" in render_postgres_conf(
        1, Path("/srv/o'brien/var/run")
    )


def test_postgres_conf_without_socket_dir_disables_unix_sockets() -> None:
    assert "unix_socket_directories = ''" in render_postgres_conf(1, None)


def test_postgres_conf_preloads_timescaledb_when_installed() -> None:
    assert "shared_preload_libraries = 'timescaledb'" in render_postgres_conf(1, None, timescaledb=True)


def test_socket_dir_fits_rejects_paths_longer_than_sun_path() -> None:
    assert socket_dir_fits(Path("/srv/fiberstack/var/run"), 54329)
    assert not socket_dir_fits(Path("/" + "x" * 100), 54329)


def test_redis_conf_is_loopback_only_without_persistence(tmp_path: Path) -> None:
    conf = render_redis_conf(63790, tmp_path, tmp_path / "redis.pid", tmp_path / "redis.log")
    lines = conf.splitlines()
    assert "bind 127.0.0.1" in lines
    assert "port 63790" in lines
    assert 'save ""' in lines
    assert "appendonly no" in lines
    assert f'dir "{tmp_path}"' in lines
    assert configured_port(conf) == 63790


def test_redis_conf_quotes_paths_with_spaces_and_quotes() -> None:
    conf = render_redis_conf(1, Path('/a b/"c"'), Path("/p"), Path("/l"))
    assert 'dir "/a b/\\"c\\""' in conf.splitlines()


# -- parsers ----------------------------------------------------------------------------------


def test_parse_postmaster_pid_reads_pid_port_and_status() -> None:
    text = "4242\n/srv/var/postgres/data\n1700000000\n54329\n/srv/var/run\n127.0.0.1\n  1 2\nready   \n"
    info = parse_postmaster_pid(text)
    assert info is not None
    assert (info.pid, info.port, info.status) == (4242, 54329, "ready")


def test_parse_postmaster_pid_tolerates_a_half_written_file() -> None:
    assert parse_postmaster_pid("") is None
    info = parse_postmaster_pid("4242\n")
    assert info is not None
    assert (info.pid, info.port, info.status) == (4242, None, "")


@pytest.mark.parametrize(
    ("output", "major"),
    [("postgres (PostgreSQL) 15.8", "15"), ("postgres (PostgreSQL) 16.4 (Debian 16.4-1)", "16"), ("x", None)],
)
def test_parse_pg_version_returns_the_major(output: str, major: str | None) -> None:
    assert parse_pg_version(output) == major


def test_parse_shell_env_reads_the_demo_credentials_format() -> None:
    text = (
        "# written by seed_demo\n"
        "FIBERSTACK_URL=http://127.0.0.1:8000\n"
        "export FIBERSTACK_ADMIN_USER='admin'\n"
        'FIBERSTACK_ADMIN_PASSWORD="p a ss"\n'
        "FIBERSTACK_AGENT_TOKEN=fs_abc.def  # agent\n"
    )
    assert parse_shell_env(text) == {
        "FIBERSTACK_URL": "http://127.0.0.1:8000",
        "FIBERSTACK_ADMIN_USER": "admin",
        "FIBERSTACK_ADMIN_PASSWORD": "p a ss",
        "FIBERSTACK_AGENT_TOKEN": "fs_abc.def",
    }


def test_version_key_sorts_numerically_and_puts_odd_names_last() -> None:
    assert sorted(["9.6", "15", "16", "common"], key=version_key, reverse=True) == [
        "16",
        "15",
        "9.6",
        "common",
    ]


# -- binary discovery -------------------------------------------------------------------------


def _fake_bindir(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in postgres.REQUIRED_PROGRAMS:
        program = directory / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return directory


def test_discover_bindir_prefers_the_highest_debian_version(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _fake_bindir(lib / "13" / "bin")
    newest = _fake_bindir(lib / "16" / "bin")
    (lib / "17" / "bin").mkdir(parents=True)  # incomplete install: skipped
    assert discover_bindir("", lib_root=lib) == newest


def test_discover_bindir_looks_in_path_first_and_follows_symlinks(tmp_path: Path) -> None:
    real = _fake_bindir(tmp_path / "opt" / "pg" / "bin")
    links = tmp_path / "usr-local-bin"
    links.mkdir()
    (links / "pg_ctl").symlink_to(real / "pg_ctl")
    _fake_bindir(tmp_path / "lib" / "16" / "bin")
    assert discover_bindir(str(links), lib_root=tmp_path / "lib") == real


def test_discover_bindir_picks_the_version_an_existing_cluster_needs(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    old = _fake_bindir(lib / "15" / "bin")
    _fake_bindir(lib / "16" / "bin")
    found = discover_bindir("", lib_root=lib, prefer_major="15", version_of=lambda d: d.parent.name)
    assert found == old


def test_discover_bindir_returns_none_when_nothing_is_installed(tmp_path: Path) -> None:
    assert discover_bindir("", lib_root=tmp_path / "missing") is None


def test_has_timescaledb_looks_for_the_extension_library(tmp_path: Path) -> None:
    bindir = _fake_bindir(tmp_path / "16" / "bin")
    (bindir / "pg_config").unlink(missing_ok=True)
    assert not has_timescaledb(bindir)
    (tmp_path / "16" / "lib").mkdir()
    (tmp_path / "16" / "lib" / "timescaledb-2.17.2.so").touch()
    assert has_timescaledb(bindir)


# -- root versus normal user ------------------------------------------------------------------


def test_root_runs_postgres_through_runuser_when_available() -> None:
    assert drop_privileges_prefix(POSTGRES_USER, have_runuser=True, have_setpriv=True) == [
        "runuser",
        "-u",
        "postgres",
        "--",
    ]


def test_root_falls_back_to_setpriv() -> None:
    assert drop_privileges_prefix(POSTGRES_USER, have_runuser=False, have_setpriv=True) == [
        "setpriv",
        "--reuid=101",
        "--regid=104",
        "--init-groups",
        "--",
    ]


def test_root_without_runuser_or_setpriv_gets_a_clear_error() -> None:
    with pytest.raises(DevstackError, match="runuser"):
        drop_privileges_prefix(POSTGRES_USER, have_runuser=False, have_setpriv=False)


def test_user_namespace_prefix_maps_root_to_the_service_uid() -> None:
    assert user_namespace_prefix(POSTGRES_USER) == [
        "unshare",
        "--user",
        "--map-user=101",
        "--map-group=104",
        "--",
    ]


def test_normal_user_runs_postgres_directly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(postgres, "is_root", lambda: False)
    assert choose_privileges(Layout(tmp_path)) == postgres.Privileges()


def test_root_uses_runuser_and_chown_when_the_user_can_reach_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "is_root", lambda: True)
    monkeypatch.setattr(postgres, "pick_service_user", lambda: POSTGRES_USER)
    monkeypatch.setattr(postgres, "first_blocked_ancestor", lambda *args: None)
    monkeypatch.setattr(postgres.shutil, "which", lambda name: f"/usr/bin/{name}")
    privileges = choose_privileges(Layout(tmp_path))
    assert privileges.prefix == ("runuser", "-u", "postgres", "--")
    assert privileges.chown_to == POSTGRES_USER


def test_root_falls_back_to_a_user_namespace_when_var_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "is_root", lambda: True)
    monkeypatch.setattr(postgres, "pick_service_user", lambda: POSTGRES_USER)
    monkeypatch.setattr(postgres, "first_blocked_ancestor", lambda *args: tmp_path)
    monkeypatch.setattr(postgres, "user_namespaces_work", lambda user: True)
    privileges = choose_privileges(Layout(tmp_path))
    assert privileges.prefix[0] == "unshare"
    assert privileges.chown_to is None


def test_root_gets_a_clear_error_when_no_way_to_run_postgres_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "is_root", lambda: True)
    monkeypatch.setattr(postgres, "pick_service_user", lambda: POSTGRES_USER)
    monkeypatch.setattr(postgres, "first_blocked_ancestor", lambda *args: tmp_path)
    monkeypatch.setattr(postgres, "user_namespaces_work", lambda user: False)
    with pytest.raises(DevstackError, match=r"not searchable by 'postgres'.*DATABASE_URL"):
        choose_privileges(Layout(tmp_path))


@pytest.mark.parametrize(
    ("mode", "owner", "group", "expected"),
    [
        (0o700, 101, 0, True),  # owner
        (0o700, 0, 104, False),  # group without x
        (0o710, 0, 104, True),  # group with x
        (0o701, 0, 0, True),  # others with x
        (0o750, 0, 0, False),  # /root-like
    ],
)
def test_can_traverse_follows_the_classic_permission_bits(
    mode: int, owner: int, group: int, expected: bool
) -> None:
    assert can_traverse(stat.S_IFDIR | mode, owner, group, 101, (104,)) is expected


def test_first_blocked_ancestor_finds_the_directory_that_stops_the_user() -> None:
    modes = {"/": 0o755, "/root": 0o700, "/root/fiberstack": 0o755, "/root/fiberstack/var": 0o755}

    def lookup(path: Path) -> os.stat_result:
        return os.stat_result((stat.S_IFDIR | modes[str(path)], 0, 0, 0, 0, 0, 0, 0, 0, 0))

    assert first_blocked_ancestor(Path("/root/fiberstack/var"), 101, (104,), lookup) == Path("/root")
    assert first_blocked_ancestor(Path("/root/fiberstack/var"), 0, (0,), lookup) is None


# -- process supervision and test defaults -----------------------------------------------------


def test_line_prefix_pads_names_into_a_column() -> None:
    assert line_prefix("web", 6, None) == "web    | "
    assert line_prefix("web", 3, "36") == "\033[36mweb | \033[0m"


def test_describe_exit_names_the_signal_that_killed_a_child() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "was killed by SIGKILL"


def test_supervisor_prefixes_output_and_reports_a_child_that_dies(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(name_width=5, stop_timeout=5, out=out)
    env = dict(os.environ)
    supervisor.start("long", [sys.executable, "-c", "import time; time.sleep(60)"], env, tmp_path)
    supervisor.start("dies", [sys.executable, "-c", "print('hello'); raise SystemExit(3)"], env, tmp_path)
    assert supervisor.supervise() == 1
    assert "dies  | hello\n" in out.getvalue()
    assert "dies exited with code 3" in out.getvalue()
    assert all(child.process.poll() is not None for child in supervisor.children)


def test_supervisor_stops_children_cleanly_on_request(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout=5, out=io.StringIO())
    child = supervisor.start(
        "sleep", [sys.executable, "-c", "import time; time.sleep(60)"], os.environ, tmp_path
    )
    supervisor.stop_signal = 15
    assert supervisor.supervise() == 0
    assert child.process.returncode is not None


@pytest.mark.parametrize(
    ("cpus", "xdist", "expected"), [(4, True, ["-n", "2", "--dist", "loadgroup"]), (1, True, []), (4, False, [])]
)
def test_default_pytest_args_use_two_xdist_workers_when_they_help(
    cpus: int, xdist: bool, expected: list[str]
) -> None:
    assert cli.default_pytest_args(cpus, xdist) == expected


def test_the_development_worker_consumes_every_routed_queue() -> None:
    from fiberstack.celery_routes import QUEUES, route_task
    from fiberstack.devstack.cli import worker_command

    command = worker_command("python")
    consumed = set(command[command.index("-Q") + 1].split(","))
    routed = {route_task(name, (), {}, {})["queue"] for name in
              ("metrics.rollup", "metrics.apply_retention", "audit.apply_retention", "metrics.ensure_partitions",
               "metrics.compress_chunks", "hosts.anything", "alerts.evaluate_rules")}
    assert routed <= consumed == set(QUEUES)


def test_the_docker_worker_consumes_every_routed_queue() -> None:
    from fiberstack.celery_routes import QUEUES

    entrypoint = (Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh").read_text()
    assert f'CELERY_QUEUES:-{",".join(QUEUES)}' in entrypoint
