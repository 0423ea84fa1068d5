"""A query parameter a page cannot read is a 400 in plain text naming it and why, the same answer as a NUL
in a parameter (apps/core/params.py, answered by ApiErrorMiddleware). Each of these used to be silently
ignored with a 200: ``?state=bogus`` showed the firing tab as if filtered, ``?severity=bogus`` every
severity, ``?rule=not-a-uuid`` no alerts, ``?page=abc`` page one, an audit ``?before=`` that is no UUID
the newest page, ``?range=forever`` each widget's own range. Valid, empty and absent values answer as
before."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from apps.audit.services import record_event
from tests.alerts.factories import AlertFactory, AlertRuleFactory
from tests.dashboards.saved_factories import SavedDashboardFactory

pytestmark = pytest.mark.django_db

ALERTS, HOSTS, AUDIT, EXPORT = "/{org}/alerts/", "/{org}/hosts/", "/{org}/audit/", "/{org}/audit/export"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("path", "parameter", "value", "why"), [
    (ALERTS, "state", "bogus", "must be one of firing, pending, acknowledged, resolved, open, not 'bogus'."),
    (ALERTS, "severity", "bogus", "must be one of warning, critical, not 'bogus'."),
    (ALERTS, "rule", "not-a-uuid", "must be a UUID, not 'not-a-uuid'."),
    (ALERTS, "page", "abc", "must be a whole number from 1, not 'abc'."),
    (ALERTS, "page", "0", "must be a whole number from 1, not '0'."),
    (ALERTS, "page", "-1", "must be a whole number from 1, not '-1'."),
    (ALERTS, "page", "1.5", "must be a whole number from 1, not '1.5'."),
    (HOSTS, "page", "abc", "must be a whole number from 1, not 'abc'."),
    (AUDIT, "before", "garbage", "must be a UUID, not 'garbage'."),
    (AUDIT, "after", "garbage", "must be a UUID, not 'garbage'."),
    (EXPORT, "format", "xml", "must be one of csv, json, not 'xml'."),
    ("/{org}/dashboards/{dashboard}/", "range", "forever", "must be one of 1h, 6h, 24h, 7d, 30d, not 'forever'."),
])
def test_an_unreadable_parameter_is_a_400_naming_it(owner: Any, org: Any, path: str, parameter: str, value: str,
                                                    why: str) -> None:
    dashboard = SavedDashboardFactory(organization=org) if "{dashboard}" in path else None
    url = path.format(org=org.slug, dashboard=dashboard.public_id if dashboard else "")
    response = _client(owner).get(url, {parameter: value}, headers={"accept": "text/html"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == f"{parameter}: {why}"


def test_a_long_value_is_echoed_cut_short(owner: Any, org: Any) -> None:
    response = _client(owner).get(ALERTS.format(org=org.slug), {"state": "x" * 10_000}, headers={"accept": "text/html"})
    assert response.status_code == 400
    assert len(response.content) < 200


def test_other_clients_get_the_json_shape_of_the_nul_refusal(owner: Any, org: Any) -> None:
    response = _client(owner).get(ALERTS.format(org=org.slug), {"state": "bogus"}, headers={"accept": "*/*"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "state"
    assert response.json()["error"].startswith("state: must be one of")


def test_valid_empty_and_absent_values_still_filter(owner: Any, org: Any) -> None:
    cpu, disk = AlertRuleFactory(organization=org), AlertRuleFactory(organization=org)
    AlertFactory(organization=org, rule=cpu, severity="critical", labels={"alertname": "a", "host": "crit-1"})
    AlertFactory(organization=org, rule=disk, severity="warning", labels={"alertname": "a", "host": "warn-1"})
    AlertFactory(organization=org, rule=disk, state="acknowledged", labels={"alertname": "a", "host": "ack-1"})
    client = _client(owner)

    def shown(**params: str) -> set[str]:
        response = client.get(ALERTS.format(org=org.slug), params)
        assert response.status_code == 200
        return {host for host in ("crit-1", "warn-1", "ack-1") if escape(f'host="{host}"') in response.content.decode()}

    assert shown() == shown(state="", severity="", rule="", page="") == {"crit-1", "warn-1"}
    assert shown(state="acknowledged") == {"ack-1"}
    assert shown(severity="warning") == {"warn-1"}
    assert shown(state="open", rule=str(disk.public_id)) == {"warn-1", "ack-1"}
    assert shown(page="1") == shown(page="7") == shown(page="9" * 40) == {"crit-1", "warn-1"}  # past the last: the last
    assert client.get(HOSTS.format(org=org.slug), {"page": "3"}).status_code == 200
    event = record_event(action="x.done", actor=None, organization=org)
    for cursor in ("before", "after"):
        assert client.get(AUDIT.format(org=org.slug), {cursor: str(event.public_id)}).status_code == 200


@pytest.mark.parametrize("parameter", ["from", "to"])
def test_the_audit_page_answers_a_filter_its_form_refuses_with_a_400_naming_it(owner: Any, org: Any,
                                                                                parameter: str) -> None:
    response = _client(owner).get(AUDIT.format(org=org.slug), {parameter: "not-a-date"})
    assert response.status_code == 400  # was a 200 with the error above an empty table
    assert response.context["rows"] == [] and list(response.context["form"].errors) == [parameter]
    assert "Enter a valid date." in response.content.decode()
