"""`make test` installs the real agents some tests drive (collectd, prometheus, influx) without starting
them as system daemons: the policy-rc.d guard, the package check and the install call, with no apt-get."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fiberstack.devstack import cli
from fiberstack.devstack.system import POLICY_FORBIDDEN, DevstackError, service_starts_forbidden


def policy_verdict(policy: Path) -> int:
    """What invoke-rc.d would be told about starting a service (it runs the script the same way)."""
    return subprocess.run([str(policy), "collectd", "start"], check=False).returncode


def write_policy(policy: Path, status: int) -> str:
    text = f"#!/bin/sh\nexit {status}\n"
    policy.write_text(text)
    policy.chmod(0o755)
    return text


def test_service_starts_are_forbidden_inside_the_block_only(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with service_starts_forbidden(policy):
        assert policy_verdict(policy) == POLICY_FORBIDDEN
    assert not policy.exists()


def test_a_permissive_policy_is_set_aside_and_restored_even_after_a_failure(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    original = write_policy(policy, 0)
    with pytest.raises(DevstackError), service_starts_forbidden(policy):
        assert policy_verdict(policy) == POLICY_FORBIDDEN
        raise DevstackError("apt-get failed")
    assert policy.read_text() == original
    assert policy_verdict(policy) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy-rc.d"]


def test_a_policy_that_already_forbids_starts_is_left_untouched(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    original = write_policy(policy, POLICY_FORBIDDEN)
    before = policy.stat().st_mtime_ns
    with service_starts_forbidden(policy):
        assert policy.read_text() == original
    assert policy.stat().st_mtime_ns == before


def test_a_policy_set_aside_by_a_killed_install_is_put_back_first(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    write_policy(policy, POLICY_FORBIDDEN)  # ours, never removed
    original = write_policy(tmp_path / "policy-rc.d.fiberstack-saved", 0)
    with service_starts_forbidden(policy):
        assert policy_verdict(policy) == POLICY_FORBIDDEN
    assert policy.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy-rc.d"]


def test_missing_test_clients_are_the_packages_dpkg_lacks_each_once() -> None:
    asked: list[Sequence[str]] = []

    def installed(packages: Sequence[str]) -> set[str] | None:
        asked.append(packages)
        return {"influxdb-client", "collectd-core", "libcurl3-gnutls", "rsyslog", "chromium"}

    assert cli.missing_test_clients(installed) == ["libyajl2", "prometheus", "prometheus-alertmanager",
                                                   "rsyslog-elasticsearch"]
    assert len(asked) == 1  # one dpkg-query for the whole table


def test_without_dpkg_the_packages_of_missing_programs_are_missing() -> None:
    found = {"influx": "/usr/bin/influx", "prometheus": "/usr/bin/prometheus", "rsyslogd": "/usr/sbin/rsyslogd",
             "chromium": "/usr/bin/chromium", "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager"}
    assert cli.missing_test_clients(lambda _: None, found.get) == ["collectd-core", "libyajl2", "libcurl3-gnutls"]


def test_collectd_core_comes_with_the_libraries_of_write_http_and_not_the_collectd_metapackage() -> None:
    assert cli.TEST_CLIENT_PACKAGES["collectd"] == ("collectd-core", "libyajl2", "libcurl3-gnutls")
    assert "collectd" not in {p for packages in cli.TEST_CLIENT_PACKAGES.values() for p in packages}


def test_install_test_clients_installs_only_the_missing_ones_without_starting_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(cli, "is_root", lambda: True)
    monkeypatch.setattr(cli, "missing_test_clients", lambda: ["prometheus"])
    monkeypatch.setattr(cli, "apt_install", lambda packages, why, **kw: calls.append((list(packages), kw)))
    cli.install_test_clients()
    assert calls == [(["prometheus"], {"start_services": False})]


def test_install_test_clients_does_nothing_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "is_root", lambda: False)
    monkeypatch.setattr(cli, "missing_test_clients", lambda: pytest.fail("dpkg was asked"))
    monkeypatch.setattr(cli, "apt_install", lambda *a, **kw: pytest.fail("apt-get was run"))
    cli.install_test_clients()


def test_a_failed_install_is_a_warning_not_an_error(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise DevstackError("`apt-get update` failed with exit code 100")

    monkeypatch.setattr(cli, "is_root", lambda: True)
    monkeypatch.setattr(cli, "missing_test_clients", lambda: ["collectd-core", "libyajl2"])
    monkeypatch.setattr(cli, "apt_install", fail)
    cli.install_test_clients()
    assert "tests that need collectd-core, libyajl2 will be skipped" in capsys.readouterr().out


def test_syslog_ng_is_unpacked_beside_rsyslog_not_installed() -> None:
    """The two Debian packages conflict: rsyslog is a test client package, syslog-ng is only unpacked."""
    from fiberstack.devstack import syslog_ng

    assert cli.TEST_CLIENT_PACKAGES["rsyslogd"] == ("rsyslog", "rsyslog-elasticsearch")
    assert not {"syslog-ng", "syslog-ng-core"} & {p for packages in cli.TEST_CLIENT_PACKAGES.values() for p in packages}
    assert syslog_ng.PACKAGES[:2] == ("syslog-ng-core", "syslog-ng-mod-http")
