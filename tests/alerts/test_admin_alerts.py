"""Admin for alerts: read-only pages; acknowledge and resolve actions go through the services (audited)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.alerts import delivery
from apps.alerts.models import Alert, AlertEvent, AlertGroup
from apps.alerts.services.lifecycle import record_outcomes
from apps.audit.models import AuditEvent
from tests.alerts.factories_lifecycle import at, breach, rule_with_channels
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: Any) -> None:
    monkeypatch.setattr(delivery, "_send", lambda ids: None)


@pytest.fixture
def root() -> Any:
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client_(root: Any) -> Client:
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def alerts(org: Any) -> list[Alert]:
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(host="a"), breach(host="b")], at=at(0), complete=True)
    return list(Alert.objects.filter(rule=rule).order_by("labels__host"))


def test_pages_render_read_only(admin_client_, alerts):
    alert = alerts[0]
    assert admin_client_.get("/admin/alerts/alert/").status_code == 200
    page = admin_client_.get(f"/admin/alerts/alert/{alert.pk}/change/")
    assert page.status_code == 200 and b'name="state"' not in page.content  # shown, not editable
    assert admin_client_.get("/admin/alerts/alert/add/").status_code == 403
    group = AlertGroup.objects.get()
    assert admin_client_.get(f"/admin/alerts/alertgroup/{group.pk}/change/").status_code == 200
    assert admin_client_.get("/admin/alerts/alertgroup/add/").status_code == 403
    event = AlertEvent.objects.first()
    assert admin_client_.get(f"/admin/alerts/alertevent/{event.pk}/change/").status_code == 200
    assert admin_client_.post(f"/admin/alerts/alertevent/{event.pk}/delete/").status_code == 403
    # A posted edit changes nothing.
    admin_client_.post(f"/admin/alerts/alert/{alert.pk}/change/", {"state": "resolved"})
    assert Alert.objects.get(pk=alert.pk).state == "firing"


def test_actions_go_through_the_services(admin_client_, alerts, root):
    a, b = alerts
    response = admin_client_.post("/admin/alerts/alert/", {"action": "acknowledge", "_selected_action": [a.pk]},
                                  follow=True)
    assert b"Acknowledged 1 alert" in response.content
    response = admin_client_.post("/admin/alerts/alert/", {"action": "acknowledge",
                                                           "_selected_action": [a.pk, b.pk]}, follow=True)
    assert b"only a firing alert can be acknowledged" in response.content
    admin_client_.post("/admin/alerts/alert/", {"action": "resolve", "_selected_action": [b.pk]})
    assert dict(Alert.objects.values_list("pk", "state")) == {a.pk: "acknowledged", b.pk: "resolved"}
    assert Alert.objects.get(pk=a.pk).acknowledged_by == root
    assert list(AuditEvent.objects.filter(actor_user=root, action__startswith="alert.")
                .values_list("action", flat=True).order_by("id")) == [
        "alert.acknowledged", "alert.acknowledged", "alert.resolved"]
