"""The proof of inbound alerts: the real Prometheus 2.42 and Alertmanager 0.25 from Debian (packages
prometheus and prometheus-alertmanager), configured as a team running them would be, fire into an
integration URL of the live server: the alert opens with Prometheus's labels, the integration's channel
gets its notification (outbox row), the AlertTransition hook (escalation's seam) hears it open, and when the
rule stops firing (config reloaded) Alertmanager's resolve closes it.

`make test` installs both packages on Debian when running as root (fiberstack/devstack); where they cannot
be installed these tests are skipped naming the package, and fail under CI (``CI`` set)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import Request, urlopen

import pytest
from django.test import override_settings

from apps.alerts.choices import AlertState
from apps.alerts.hooks import AlertTransition
from apps.alerts.models import Alert, Notification
from fiberstack.devstack.system import find_program, free_port
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_inbound import make_integration
from tests.conftest import AgentProcesses

PROMETHEUS = find_program("prometheus")
ALERTMANAGER = find_program("prometheus-alertmanager") or find_program("alertmanager")
pytestmark = pytest.mark.django_db(transaction=True)
ALERT = "FiberStackInboundTest"
TRANSITIONS: list[AlertTransition] = []


def record_transition(transition: AlertTransition) -> None:
    """An FIBERSTACK_ALERT_CONSUMERS consumer standing in for the escalation engine."""
    TRANSITIONS.append(transition)


def _programs() -> tuple[str, str]:
    missing = [package for package, found in (("prometheus", PROMETHEUS), ("prometheus-alertmanager", ALERTMANAGER))
               if found is None]
    if missing:
        message = f"{', '.join(missing)} (Debian package) is not installed: `make test` installs it as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(PROMETHEUS), str(ALERTMANAGER)


def rules_yml(path: Path, *, firing: bool) -> None:
    """One rule that fires at once (``for: 0s``) or, after a reload, never."""
    expr = "vector(1) > 0" if firing else "vector(1) < 0"
    path.write_text(f"""\
groups:
  - name: fiberstack-inbound
    interval: 1s
    rules:
      - alert: {ALERT}
        expr: {expr}
        for: 0s
        labels:
          severity: warning
          team: storage
        annotations:
          summary: Inbound test alert is firing
          description: Prometheus evaluates vector(1) > 0 every second.
""")


def start_alertmanager(agents: AgentProcesses, tmp_path: Path, program: str, url: str, token: str | None) -> int:
    """Alertmanager with no grouping delay and the integration URL as its webhook; the token as Bearer
    (``http_config.authorization``, the form its docs recommend) or, when ``token`` is None, in the URL."""
    port = free_port()
    auth = f"""
        http_config:
          authorization:
            credentials: {token}""" if token else ""
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""\
route:
  receiver: fiberstack
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: fiberstack
    webhook_configs:
      - url: {url}
        send_resolved: true{auth}
""")
    agents.start([program, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"],
                 tmp_path / "alertmanager.log", cwd=tmp_path)
    return port


def start_prometheus(agents: AgentProcesses, tmp_path: Path, program: str, alertmanager_port: int) -> int:
    port = free_port()
    rules_yml(tmp_path / "rules.yml", firing=True)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""\
global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs:
        - targets: ["127.0.0.1:{alertmanager_port}"]
""")
    agents.start([program, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
                  "--rules.alert.resend-delay=1s", "--log.level=info"],
                 tmp_path / "prometheus.log", cwd=tmp_path)
    return port


def reload_prometheus(port: int) -> None:
    with urlopen(Request(f"http://127.0.0.1:{port}/-/reload", method="POST"), timeout=10) as response:
        assert response.status == 200


def _wait_until(agents: AgentProcesses, check: Callable[[], bool], what: str) -> None:
    def safe() -> bool:
        try:
            return check()
        except (URLError, OSError):
            return False

    agents.wait_for(safe, what, timeout=60)


def wait_for_alert(agents: AgentProcesses, integration: Any, state: str) -> Alert:
    """The integration's alert once it is in ``state`` (Prometheus and Alertmanager take their time)."""
    def alert() -> Alert | None:
        return Alert.objects.filter(rule=integration.rule).first()

    _wait_until(agents, lambda: (a := alert()) is not None and a.state == state,
                f"alert {state} through Alertmanager")
    found = alert()
    assert found is not None
    return found


@pytest.mark.parametrize("token_in", ["header", "url"])
@override_settings(FIBERSTACK_ALERT_CONSUMERS=[f"{__name__}.record_transition"])
def test_prometheus_and_alertmanager_open_notify_and_resolve_an_alert_through_the_integration_url(
    token_in: str, live_server: Any, org: Any, tmp_path: Path, agent_processes: AgentProcesses,
) -> None:
    prometheus, alertmanager = _programs()
    TRANSITIONS.clear()
    channel = NotificationChannelFactory(organization=org, name="storage-oncall")
    integration, token = make_integration(org, name="team-prometheus", channels=[channel])
    url = f"{live_server.url}/api/v1/integrations/{integration.public_id}/alertmanager"
    if token_in == "url":
        am_port = start_alertmanager(agent_processes, tmp_path, alertmanager, f"{url}/{token}", None)
    else:
        am_port = start_alertmanager(agent_processes, tmp_path, alertmanager, url, token)
    prom_port = start_prometheus(agent_processes, tmp_path, prometheus, am_port)

    opened = wait_for_alert(agent_processes, integration, AlertState.FIRING)
    assert opened.labels == {"alertname": ALERT, "severity": "warning", "team": "storage"}
    assert opened.severity == "warning"
    assert opened.summary == "Inbound test alert is firing"
    assert opened.description.startswith("Prometheus evaluates vector(1) > 0 every second.")
    [note] = Notification.objects.filter(channel=channel, kind="firing")
    assert note.alert_id == opened.pk
    assert note.payload["alerts"][0]["labels"]["alertname"] == ALERT
    # The hook runs after the commit that made the alert visible here: wait for it too.
    _wait_until(agent_processes, lambda: len(TRANSITIONS) >= 1, "the opened transition")
    assert [(t.alert_id, t.to_state) for t in TRANSITIONS] == [(opened.pk, AlertState.FIRING)]

    rules_yml(tmp_path / "rules.yml", firing=False)
    reload_prometheus(prom_port)
    resolved = wait_for_alert(agent_processes, integration, AlertState.RESOLVED)
    assert resolved.pk == opened.pk and resolved.resolved_at is not None
    assert Notification.objects.filter(channel=channel, kind="resolved", alert=resolved).count() == 1
    _wait_until(agent_processes, lambda: len(TRANSITIONS) >= 2, "the resolved transition")
    assert [t.to_state for t in TRANSITIONS] == [AlertState.FIRING, AlertState.RESOLVED]
    integration.refresh_from_db()
    assert integration.last_received_at is not None
    agent_processes.stop_all()
    log = (tmp_path / "alertmanager.log").read_text()
    assert "level=error" not in log, log  # every webhook was accepted (a 4xx/5xx is logged as an error)
    assert log.count('msg="Notify success"') >= 2, log  # firing, then resolved
