"""A platform admin sets an organization's log retention in the admin; the write is audited and the
override takes effect for searches and the retention job."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.logs import retention
from apps.logs.models import LogRetention

pytestmark = pytest.mark.django_db


def test_admin_sets_a_retention_override_and_it_is_audited(client: Client, admin_user: Any, org: Any) -> None:
    client.force_login(admin_user)
    response = client.post("/admin/logs/logretention/add/", {"organization": org.pk, "logs_days": "14",
                                                              "events_days": ""})
    assert response.status_code == 302, response.content
    assert LogRetention.objects.get(organization=org).logs_days == 14
    assert retention.retention_days(org.pk, "logs") == 14
    assert retention.retention_days(org.pk, "events") == 90
    event = AuditEvent.objects.get(action="log_retention.created")
    assert event.organization_id == org.pk


def test_admin_refuses_out_of_range_days(client: Client, admin_user: Any, org: Any) -> None:
    client.force_login(admin_user)
    response = client.post("/admin/logs/logretention/add/", {"organization": org.pk, "logs_days": "0"})
    assert response.status_code == 200 and not LogRetention.objects.exists()


def test_members_cannot_reach_the_admin(client: Client, owner: Any) -> None:
    client.force_login(owner)
    assert client.get("/admin/logs/logretention/").status_code == 302
