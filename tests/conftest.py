"""Shared fixtures (OnCall engine/conftest.py style): an organization with one member per role, an
outsider from another organization, and API clients for users and agent tokens."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.core.roles import Role
from apps.organizations.models import AgentToken, Organization
from apps.organizations.services import issue_token
from tests.organizations.factories import MembershipFactory, OrganizationFactory, UserFactory

PASSWORD = "correct horse battery"


# The time-series tables are made by SQL, not models, so Django's flush does not know them: without this a
# transactional test (live server, real worker, browser) would leave samples, rollups and log lines for
# every later test of its process to roll up and count.
TRUNCATE_DATA_TABLES = """DO $$ DECLARE names text; BEGIN
  SELECT string_agg(format('%I', c.relname), ', ') INTO names FROM pg_class AS c
  JOIN pg_namespace AS n ON n.oid = c.relnamespace
  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND c.relname ~ ('^(metrics_sample|metrics_sample_compressed|metrics_rollup_(1m|5m|1h|1d)(_compressed)?'
                     '|logs_entry|logs_event)$');
  IF names IS NOT NULL THEN EXECUTE 'TRUNCATE ' || names; END IF;
END $$"""


def _flush_past_the_audit_log_triggers() -> None:
    """After every transactional test Django's flush TRUNCATEs every table, the append-only audit log
    included, whose trigger refuses TRUNCATE. The suite connects as the owner, which (unlike the app
    role) may switch the table's triggers off; it does so inside the flush's own transaction."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush

    def sql_flush(self: DatabaseOperations, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        statements = original(self, style, tables, **kwargs)
        if "audit_auditevent" not in tables:
            return statements
        return ["ALTER TABLE audit_auditevent DISABLE TRIGGER USER", *statements, TRUNCATE_DATA_TABLES,
                "ALTER TABLE audit_auditevent ENABLE TRIGGER USER"]

    DatabaseOperations.sql_flush = sql_flush


_flush_past_the_audit_log_triggers()


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # delete_pattern respects the test KEY_PREFIX; cache.clear() would FLUSHDB a Redis others may share.
    cache.delete_pattern("*")


@pytest.fixture
def org(db: Any) -> Organization:
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def other_org(db: Any) -> Organization:
    return OrganizationFactory(name="Globex", slug="globex")


def _member(org: Organization, role: str, username: str) -> Any:
    return MembershipFactory(organization=org, user=UserFactory(username=username), role=role).user


@pytest.fixture
def owner(org: Organization) -> Any:
    return _member(org, Role.OWNER, "alice")


@pytest.fixture
def admin_member(org: Organization) -> Any:
    return _member(org, Role.ADMIN, "adam")


@pytest.fixture
def editor(org: Organization) -> Any:
    return _member(org, Role.EDITOR, "erin")


@pytest.fixture
def member_ro(org: Organization) -> Any:
    return _member(org, Role.VIEWER, "bob")


@pytest.fixture
def other_org_user(other_org: Organization) -> Any:
    return _member(other_org, Role.OWNER, "charlie")


@pytest.fixture
def user_with_role(org: Organization) -> Callable[[str], Any]:
    """Factory fixture: a fresh member of `org` with the given role."""
    counter = iter(range(1000))

    def make(role: str) -> Any:
        return _member(org, role, f"{role}{next(counter)}")

    return make


@pytest.fixture
def make_token(org: Organization) -> Callable[..., tuple[AgentToken, str]]:
    def make(scope: str = AgentToken.Scope.WRITE, organization: Organization | None = None,
             **kwargs: Any) -> tuple[AgentToken, str]:
        return issue_token(organization=organization or org, name=f"agent-{scope}", scope=scope, actor=None,
                           **kwargs)

    return make


@pytest.fixture
def write_token(make_token: Callable[..., tuple[AgentToken, str]]) -> str:
    return make_token(AgentToken.Scope.WRITE)[1]


@pytest.fixture
def read_token(make_token: Callable[..., tuple[AgentToken, str]]) -> str:
    return make_token(AgentToken.Scope.READ)[1]


@pytest.fixture
def api_client() -> Callable[..., APIClient]:
    """`api_client(user=...)` logs a user in (session); `api_client(token=...)` sends a bearer token."""

    def make(user: Any = None, token: str | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        if token is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture(scope="session", autouse=True)
def _close_leaked_test_db_sessions(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """Connections opened by worker threads (Channels' database_sync_to_async, asgiref executors) are
    thread-local and never closed by Django; end them before pytest-django drops the test database,
    which otherwise fails with "being accessed by other users" and leaves the database behind."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


class AgentProcesses:
    """Real agent programs (collectd, prometheus, ...) a test starts, their output in a file of their own;
    every one still running is stopped when the test ends, passed or not."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []
        self.log_files: list[Path] = []

    #: Seconds after which coreutils' timeout ends an agent even if this pytest process was killed
    #: and never ran the finalizer: no collectd or Prometheus outlives a test run for long.
    LIFETIME = 300

    def start(self, argv: list[str], output: Path, cwd: Path, *, other_logs: tuple[Path, ...] = (),
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `argv` with stdout and stderr in `output`; `other_logs` (files the program writes
        itself) are shown with it when a wait fails; `env` replaces the environment when given."""
        timeout = shutil.which("timeout")  # it passes our SIGTERM on to the agent
        bounded = [timeout, "--kill-after=10", str(self.LIFETIME), *argv] if timeout else argv
        with output.open("ab") as sink:
            process = subprocess.Popen(bounded, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink,
                                       stderr=subprocess.STDOUT, env=env)
        self.running.append(process)
        self.log_files += [output, *other_logs]
        return process

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Poll `check` until true; fail early, with the logs, if an agent exited or the deadline passed.
        The deadline is generous and the polling fine because the machine may be loaded."""
        deadline = time.monotonic() + timeout
        while not check():
            exited = [process.returncode for process in self.running if process.poll() is not None]
            if exited or time.monotonic() > deadline:
                reason = f"an agent exited with {exited[0]}" if exited else f"no {what} after {timeout:.0f}s"
                pytest.fail(f"{reason}\n{self.logs()}")
            time.sleep(0.25)

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-4000:]}"
                         for log in self.log_files if log.exists())

    def stop_all(self) -> None:
        """SIGTERM (collectd and Prometheus flush on it), then SIGKILL after a grace period."""
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def agent_processes() -> Iterator[AgentProcesses]:
    agents = AgentProcesses()
    try:
        yield agents
    finally:
        agents.stop_all()
