"""The integration doors: Alertmanager webhook v4 and generic JSON bodies open, update and resolve alerts
through the lifecycle (grouped, notified through the outbox like our own); the integration's own token in a
header or the URL; bad items named by index and field; never a 5xx."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.alerts.choices import AlertState, IntegrationKind
from apps.alerts.inbound.services import update_integration
from apps.alerts.models import Alert, AlertEvent, Notification
from apps.alerts.services.lifecycle import fingerprint
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_inbound import alertmanager_body, make_integration

pytestmark = pytest.mark.django_db

CPU = {"alertname": "HighCPU", "instance": "web-1:9100", "job": "node", "severity": "critical"}


def firing(labels: dict[str, str] = CPU, **annotations: str) -> dict[str, Any]:
    return {"status": "firing", "labels": labels, "annotations": annotations}


def resolved(labels: dict[str, str] = CPU, **annotations: str) -> dict[str, Any]:
    return {"status": "resolved", "labels": labels, "annotations": annotations, "endsAt": "2026-12-04T10:05:00Z"}


def post(integration: Any, body: Any, token: str | None = None, *, door: str | None = None, suffix: str = "",
         raw: bytes | None = None, **meta: Any) -> Any:
    path = f"/api/v1/integrations/{integration.public_id}/{door or integration.kind}{suffix}"
    if token is not None:
        meta.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    data = raw if raw is not None else json.dumps(body).encode()
    return APIClient().generic("POST", path, data=data, content_type="application/json", **meta)


@pytest.fixture
def prometheus(org: Any) -> tuple[Any, str, Any]:
    channel = NotificationChannelFactory(organization=org, name="ops-hook")
    integration, token = make_integration(org, channels=[channel])
    return integration, token, channel


def test_a_firing_alertmanager_alert_opens_an_alert_with_its_labels_texts_and_a_notification(prometheus):
    integration, token, channel = prometheus
    body = alertmanager_body(firing(summary="CPU over 90%", description="web-1 is busy",
                                    runbook_url="https://runbooks/cpu"))
    response = post(integration, body, token)

    assert response.status_code == 200, response.content
    assert response.json()["opened"] == 1 and response.json()["rejected"] == []
    alert = Alert.objects.get(rule=integration.rule)
    assert alert.state == AlertState.FIRING and alert.severity == "critical"
    assert alert.labels == CPU  # the source's alertname, not the rule's name
    assert alert.fingerprint == fingerprint(CPU)  # Alertmanager's identity: every label, severity included
    assert alert.summary == "CPU over 90%"
    assert alert.description == ("web-1 is busy\nrunbook_url: https://runbooks/cpu\n"
                                 "source: http://prometheus:9090/graph?g0.expr=up")
    assert response.json()["alerts"] == [{"id": str(alert.public_id), "fingerprint": alert.fingerprint,
                                          "state": "firing"}]
    [note] = Notification.objects.filter(channel=channel)
    assert note.kind == "firing" and note.payload["alerts"][0]["labels"] == CPU
    assert note.payload["alerts"][0]["annotations"]["summary"] == "CPU over 90%"
    integration.refresh_from_db()
    assert integration.last_received_at is not None


def test_the_same_alert_again_updates_it_and_a_resolve_resolves_it_and_tells_the_channel(prometheus):
    integration, token, channel = prometheus
    post(integration, alertmanager_body(firing()), token)
    again = post(integration, alertmanager_body(firing()), token).json()
    assert (again["opened"], again["updated"]) == (0, 1)
    assert Notification.objects.filter(channel=channel).count() == 1  # nothing new to tell

    done = post(integration, alertmanager_body(resolved()), token).json()

    assert (done["resolved"], done["opened"], done["updated"]) == (1, 0, 0)
    alert = Alert.objects.get(rule=integration.rule)
    assert alert.state == AlertState.RESOLVED and alert.resolved_at is not None
    assert [n.kind for n in Notification.objects.filter(channel=channel).order_by("id")] == ["firing", "resolved"]
    assert list(AlertEvent.objects.filter(alert=alert).order_by("id").values_list("to_state", flat=True)) == [
        "firing", "resolved"]
    # A resolve for an alert that is not open changes nothing and says so.
    assert post(integration, alertmanager_body(resolved()), token).json()["ignored"] == 1


def test_warning_and_critical_of_one_rule_stay_two_alerts_as_in_alertmanager(prometheus):
    integration, token, _ = prometheus
    warning = {**CPU, "severity": "warning"}
    post(integration, alertmanager_body(firing(warning), firing(CPU)), token)
    assert sorted(Alert.objects.filter(rule=integration.rule).values_list("severity", "state")) == [
        ("critical", "firing"), ("warning", "firing")]

    post(integration, alertmanager_body(resolved(warning)), token)

    states = dict(Alert.objects.filter(rule=integration.rule).values_list("severity", "state"))
    assert states == {"critical": "firing", "warning": "resolved"}


@pytest.mark.parametrize(("given", "severity"), [
    ("critical", "critical"), ("page", "critical"), ("warning", "warning"), ("info", "warning"),
    ("WARN", "warning"), ("something-else", "critical"), (None, "critical"),
])
def test_source_severities_map_to_ours_and_unknown_ones_page_as_critical(prometheus, given, severity):
    integration, token, _ = prometheus
    labels = {k: v for k, v in CPU.items() if k != "severity"}
    if given is not None:
        labels["severity"] = given
    assert post(integration, alertmanager_body(firing(labels)), token).status_code == 200
    assert Alert.objects.get(rule=integration.rule).severity == severity


def test_a_storm_in_one_request_is_one_notification_per_group(prometheus):
    integration, token, channel = prometheus
    alerts = [firing({**CPU, "instance": f"web-{i}"}) for i in range(30)]
    assert post(integration, alertmanager_body(*alerts), token).json()["opened"] == 30
    [note] = Notification.objects.filter(channel=channel)  # group_by alertname: one group
    assert len(note.payload["alerts"]) == 30


@pytest.mark.parametrize("how", ["bearer", "token", "basic", "path", "path-slash", "query"])
def test_the_integration_token_is_accepted_in_a_header_or_the_url(prometheus, how):
    integration, token, _ = prometheus
    body = alertmanager_body(firing())
    basic = base64.b64encode(f"alertmanager:{token}".encode()).decode()
    response = {
        "bearer": lambda: post(integration, body, token),
        "token": lambda: post(integration, body, HTTP_AUTHORIZATION=f"Token {token}"),
        "basic": lambda: post(integration, body, HTTP_AUTHORIZATION=f"Basic {basic}"),
        "path": lambda: post(integration, body, suffix=f"/{token}"),
        "path-slash": lambda: post(integration, body, suffix=f"/{token}/"),
        "query": lambda: post(integration, body, suffix=f"?token={token}"),
    }[how]()
    assert response.status_code == 200, response.content
    assert response.json()["opened"] == 1


def test_without_a_token_or_with_a_wrong_one_the_answer_is_401_and_nothing_opens(prometheus):
    integration, token, _ = prometheus
    body = alertmanager_body(firing())
    missing = post(integration, body)
    wrong = post(integration, body, token[:-2] + "xx")
    garbage = post(integration, body, "nonsense")
    assert [missing.status_code, wrong.status_code, garbage.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["code"] == "unauthorized"
    assert not Alert.objects.exists()


def test_an_agent_token_is_refused_with_403(prometheus, make_token):
    integration, _, _ = prometheus
    for scope in ("ingest", "read", "config"):
        response = post(integration, alertmanager_body(firing()), make_token(scope)[1])
        assert response.status_code == 403, scope
    assert not Alert.objects.exists()


def test_another_organizations_integration_url_is_404_with_our_token(prometheus, other_org):
    _, token, _ = prometheus
    theirs, _ = make_integration(other_org)
    response = post(theirs, alertmanager_body(firing()), token)
    assert response.status_code == 404
    assert not Alert.objects.exists()


def test_a_rotated_token_stops_working_at_once(prometheus):
    from apps.alerts.inbound.services import rotate_integration_token

    integration, token, _ = prometheus
    _, new = rotate_integration_token(integration=integration, actor=None)
    assert post(integration, alertmanager_body(firing()), token).status_code == 401
    assert post(integration, alertmanager_body(firing()), new).status_code == 200


def test_a_disabled_integration_refuses_alerts(prometheus):
    integration, token, _ = prometheus
    update_integration(integration=integration, actor=None, enabled=False)
    response = post(integration, alertmanager_body(firing()), token)
    assert response.status_code == 403 and response.json()["code"] == "disabled"
    assert not Alert.objects.exists()


def test_the_wrong_door_for_the_kind_is_404_naming_the_right_one(prometheus):
    integration, token, _ = prometheus
    response = post(integration, {"title": "x"}, token, door="generic")
    assert response.status_code == 404
    assert f"/api/v1/integrations/{integration.public_id}/alertmanager" in response.json()["error"]


def test_bad_items_are_named_by_index_and_field_and_the_good_ones_still_open(prometheus):
    integration, token, _ = prometheus
    body = alertmanager_body(firing(), {"status": "pending", "labels": CPU},
                             firing({"alertname": "Disk", "device": 3}), firing({**CPU, "instance": "web-2"}))
    response = post(integration, body, token)

    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid" and data["opened"] == 2
    assert [(r["item"], r["field"]) for r in data["rejected"]] == [(1, "alerts[1].status"),
                                                                   (2, "alerts[2].labels.device")]
    assert data["error"].startswith("alerts[1].status: must be \"firing\" or \"resolved\"")
    assert Alert.objects.filter(rule=integration.rule).count() == 2


@pytest.mark.parametrize(("raw", "field"), [
    (b"{not json", "body"),
    (b"[]", "body"),
    (b'{"version": "3", "alerts": []}', "version"),
    (b'{"version": "4"}', "alerts"),
    (b'{"version": "4", "alerts": {}}', "alerts"),
    ("\u00ff".encode("latin-1"), "body"),
])
def test_an_unusable_body_is_a_400_naming_the_field(prometheus, raw, field):
    integration, token, _ = prometheus
    response = post(integration, None, token, raw=raw)
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"].startswith(field)


@pytest.mark.parametrize("item", [
    {"status": "firing", "labels": {"alertname": "x\x00"}},
    {"status": "firing", "labels": {"alertname": "x"}, "annotations": {"summary": 5}},
    {"status": "firing", "labels": {"alertname": "x"}, "startsAt": "yesterday"},
    {"status": "firing", "labels": {}},
    {"status": "firing", "labels": {"alertname": "x" * 5000}},
    {"status": "firing", "labels": ["alertname"]},
    "not an object",
])
def test_odd_items_are_400s_never_500s(prometheus, item):
    integration, token, _ = prometheus
    response = post(integration, {"version": "4", "alerts": [item]}, token)
    assert response.status_code == 400
    assert response.json()["rejected"][0]["item"] == 0


def test_too_many_alerts_or_too_large_a_body_is_refused(prometheus, settings):
    integration, token, _ = prometheus
    settings.FIBERSTACK_INTEGRATION_MAX_ALERTS = 2
    response = post(integration, alertmanager_body(firing(), firing(), firing()), token)
    assert response.status_code == 400 and response.json()["field"] == "alerts"
    settings.FIBERSTACK_MAX_REQUEST_BODY_BYTES = 100
    response = post(integration, alertmanager_body(firing()), token)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert not Alert.objects.exists()


def test_a_gzip_body_is_read(prometheus):
    integration, token, _ = prometheus
    raw = gzip.compress(json.dumps(alertmanager_body(firing())).encode())
    response = post(integration, None, token, raw=raw, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200 and response.json()["opened"] == 1


def test_only_post_is_allowed(prometheus):
    integration, token, _ = prometheus
    response = APIClient().get(f"/api/v1/integrations/{integration.public_id}/alertmanager",
                               HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405 and response["Allow"] == "POST"


# --- generic ------------------------------------------------------------------------------------------


@pytest.fixture
def generic(org: Any) -> tuple[Any, str, Any]:
    channel = NotificationChannelFactory(organization=org, name="generic-hook")
    integration, token = make_integration(org, kind=IntegrationKind.GENERIC, name="scripts", channels=[channel])
    return integration, token, channel


def test_a_generic_alert_opens_and_resolves_by_its_dedup_key(generic):
    integration, token, channel = generic
    opened = post(integration, {"title": "Backup failed", "severity": "warning", "labels": {"host": "db-1"},
                                "status": "firing", "dedup_key": "backup-db-1", "description": "exit 2"}, token)
    assert opened.status_code == 200, opened.content
    assert opened.json()["opened"] == 1 and opened.json()["alerts"][0]["dedup_key"] == "backup-db-1"
    alert = Alert.objects.get(rule=integration.rule)
    assert alert.labels == {"host": "db-1", "alertname": "Backup failed", "dedup_key": "backup-db-1",
                            "severity": "warning"}
    assert (alert.summary, alert.description, alert.state) == ("Backup failed", "exit 2", "firing")

    # The resolve names only the key: same alert, texts kept.
    done = post(integration, {"status": "resolved", "dedup_key": "backup-db-1"}, token)

    assert done.json()["resolved"] == 1
    alert.refresh_from_db()
    assert (alert.state, alert.summary, alert.description) == ("resolved", "Backup failed", "exit 2")
    assert [n.kind for n in Notification.objects.filter(channel=channel).order_by("id")] == ["firing", "resolved"]


def test_a_generic_dedup_key_keeps_its_alert_when_the_labels_change(generic):
    integration, token, _ = generic
    post(integration, {"title": "Queue deep", "labels": {"queue": "a"}, "dedup_key": "q"}, token)
    second = post(integration, {"title": "Queue deeper", "labels": {"queue": "b"}, "dedup_key": "q",
                                "severity": "warning"}, token).json()
    assert (second["opened"], second["updated"]) == (0, 1)
    alert = Alert.objects.get(rule=integration.rule)
    assert alert.labels["queue"] == "a" and alert.summary == "Queue deeper" and alert.severity == "warning"


def test_a_generic_list_without_dedup_keys_dedupes_on_title_and_labels(generic):
    integration, token, _ = generic
    body = [{"title": "Disk full", "labels": {"host": "a"}}, {"title": "Disk full", "labels": {"host": "b"}}]
    assert post(integration, body, token).json()["opened"] == 2
    assert post(integration, body, token).json()["updated"] == 2
    assert post(integration, [{**body[0], "status": "resolved"}], token).json()["resolved"] == 1
    assert Alert.objects.filter(rule=integration.rule, state="firing").count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"severity": "critical"}, "body.title"),
    ({"title": "x", "status": "open"}, "body.status"),
    ({"title": "x", "labels": "host=a"}, "body.labels"),
    ({"title": "x", "severity": 3}, "body.severity"),
    ({"title": "x", "description": ["a"]}, "body.description"),
    ({"title": "x", "dedup_key": 7}, "body.dedup_key"),
    ({"status": "resolved"}, "body.title"),
])
def test_a_bad_generic_alert_is_a_400_naming_the_field(generic, body, field):
    integration, token, _ = generic
    response = post(integration, body, token)
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == field
    assert not Alert.objects.exists()


def test_a_bad_item_of_a_generic_list_is_named_by_its_index(generic):
    integration, token, _ = generic
    response = post(integration, [{"title": "ok"}, {"title": ""}], token)
    assert response.status_code == 400
    assert response.json()["rejected"] == [{"item": 1, "field": "[1].title",
                                            "error": "[1].title: is required (a resolve may give only the "
                                                     "dedup_key)."}]
    assert response.json()["opened"] == 1


def test_an_upper_case_integration_id_in_the_url_is_the_same_integration(prometheus):
    integration, token, _ = prometheus
    path = f"/api/v1/integrations/{str(integration.public_id).upper()}/alertmanager"
    response = APIClient().post(path, alertmanager_body(firing()), format="json",
                                HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["opened"] == 1


def test_the_evaluator_never_evaluates_an_integration_rule_so_its_alerts_stay_as_the_source_said(prometheus):
    """An evaluation of an external rule would find no series and resolve every alert the source opened."""
    from django.utils import timezone

    from apps.alerts.evaluation.engine import run_rules
    from apps.alerts.evaluation.tick import claim_due

    integration, token, _ = prometheus
    assert post(integration, alertmanager_body(firing()), token).status_code == 200
    run_rules([integration.rule_id])
    assert Alert.objects.get(rule=integration.rule).state == AlertState.FIRING
    assert integration.rule_id not in [rule_id for rule_id, *_ in claim_due(timezone.now())]
