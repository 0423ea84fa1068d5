"""Saved dashboard services and admin: validation before any write, the audit row in the same transaction
(no row without its event, no event without its row), and the admin writing through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from apps.audit.models import AuditEvent
from apps.dashboards.models import SavedDashboard
from apps.dashboards.saved import services
from tests.dashboards.saved_factories import SavedDashboardFactory, widget

pytestmark = pytest.mark.django_db


def test_create_validates_widgets_by_field_before_writing(org: Any, owner: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        services.create_dashboard(organization=org, actor=owner, name="X", widgets=[widget(labels="nope")])
    assert "widgets" in caught.value.message_dict
    assert "labels" in caught.value.message_dict["widgets"][0]
    assert not SavedDashboard.objects.exists() and not AuditEvent.objects.filter(action__startswith="dashboard")


def test_the_audit_row_is_in_the_same_transaction(org: Any, owner: Any, monkeypatch: Any) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("audit down")

    monkeypatch.setattr(services, "record_event", broken)
    with pytest.raises(RuntimeError):
        services.create_dashboard(organization=org, actor=owner, name="X", widgets=[widget()])
    assert not SavedDashboard.objects.exists()


def test_update_records_before_and_after(org: Any, owner: Any) -> None:
    board = SavedDashboardFactory(organization=org, name="Old", widgets=[widget()])
    services.update_dashboard(dashboard=board, actor=owner, name="New", widgets=[widget(metric="x"), widget()])
    event = AuditEvent.objects.get(action="dashboard.updated")
    text = str(event.changes)
    assert "Old" in text and "New" in text and "x" in text


def test_update_refuses_fields_that_are_not_editable(org: Any, owner: Any) -> None:
    board = SavedDashboardFactory(organization=org)
    with pytest.raises(TypeError):
        services.update_dashboard(dashboard=board, actor=owner, organization=None)


def test_admin_adds_edits_and_deletes_through_the_services(org: Any, admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post("/admin/dashboards/saveddashboard/add/", {
        "organization": org.pk, "name": "From admin", "description": "", "widgets": '[{"metric": "m"}]'})
    assert response.status_code == 302, response.content.decode()[:2000]
    board = SavedDashboard.objects.get(name="From admin")
    assert board.widgets == [widget(metric="m")]  # normalised by the same validation
    bad = client.post(f"/admin/dashboards/saveddashboard/{board.pk}/change/", {
        "name": "From admin", "description": "", "widgets": '[{"metric": "m", "agg": "median"}]'})
    assert bad.status_code == 200 and "agg" in bad.content.decode()
    response = client.post(f"/admin/dashboards/saveddashboard/{board.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(AuditEvent.objects.filter(object_id=str(board.public_id)).order_by("id")
                .values_list("action", flat=True)) == ["dashboard.created", "dashboard.deleted"]
