"""Integrations for the inbound-alert tests, made through the service (the token exists only there)."""

from __future__ import annotations

from typing import Any

from apps.alerts.choices import IntegrationKind
from apps.alerts.inbound.services import create_integration
from apps.alerts.models import Integration


def make_integration(organization: Any, *, kind: str = IntegrationKind.ALERTMANAGER, name: str = "prometheus",
                     **fields: Any) -> tuple[Integration, str]:
    """(integration, token) in ``organization``."""
    return create_integration(organization=organization, actor=None, name=name, kind=kind, **fields)


def alertmanager_body(*alerts: dict[str, Any], receiver: str = "fiberstack") -> dict[str, Any]:
    """An Alertmanager webhook v4 body around ``alerts`` (each ``{"status", "labels", "annotations"}``)."""
    entries = [{"startsAt": "2026-12-04T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up", "fingerprint": f"{i:016x}",
                "annotations": {}, **alert} for i, alert in enumerate(alerts)]
    status = "firing" if any(e["status"] == "firing" for e in entries) else "resolved"
    return {"version": "4", "groupKey": '{}:{alertname="x"}', "truncatedAlerts": 0, "status": status,
            "receiver": receiver, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": entries}
