"""The delivery ledger in the admin: listed and filtered, read-only, tries inline, and "retry now"
re-queues failed notifications through the audited service (deliver tasks after commit)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from apps.alerts.choices import NotificationKind, NotificationStatus
from apps.alerts.delivery import DELIVER_TASK
from apps.alerts.delivery.services import retry_notifications
from apps.alerts.models import DeliveryAttempt, Notification
from apps.alerts.tasks.delivery import deliver_notification
from apps.audit.models import AuditEvent
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_delivery import HttpReceiver, NotificationFactory, receiver_fixture  # noqa: F401
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:alerts_notification_changelist")


def test_the_ledger_lists_and_filters_notifications(admin_client: Any, org: Any) -> None:
    hook = NotificationChannelFactory(organization=org, name="ops-hook")
    NotificationFactory(organization=org, channel=hook, status=NotificationStatus.FAILED, last_error="HTTP 400: nope")
    NotificationFactory(organization=org, channel=hook, status=NotificationStatus.DELIVERED,
                        kind=NotificationKind.RESOLVED)

    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200 and page.context["cl"].result_count == 2
    failed = admin_client.get(CHANGELIST, {"status__exact": "failed"})
    assert [n.status for n in failed.context["cl"].result_list] == ["failed"]
    assert b"HTTP 400: nope" in failed.content
    resolved = admin_client.get(CHANGELIST, {"kind__exact": "resolved", "channel__id__exact": hook.pk})
    assert [n.kind for n in resolved.context["cl"].result_list] == ["resolved"]


def test_a_notification_page_is_read_only_with_its_tries_inline(admin_client: Any, org: Any) -> None:
    notification = NotificationFactory(organization=org, status=NotificationStatus.DELIVERED, attempts=2)
    DeliveryAttempt.objects.create(notification=notification, number=1, error="HTTP 503: busy", response_status=503,
                                   worker="w1@host:1")
    DeliveryAttempt.objects.create(notification=notification, number=2, ok=True, response_status=200,
                                   worker="w2@host:2")

    page = admin_client.get(reverse("admin:alerts_notification_change", args=[notification.pk]))

    assert page.status_code == 200
    assert b"HTTP 503: busy" in page.content and b"w2@host:2" in page.content
    assert b'name="_save"' not in page.content  # nothing to save: every field is read-only
    assert admin_client.get(reverse("admin:alerts_notification_add")).status_code == 403
    posted = admin_client.post(reverse("admin:alerts_notification_change", args=[notification.pk]),
                               {"status": "pending"})
    assert posted.status_code == 403
    assert Notification.objects.get(pk=notification.pk).status == NotificationStatus.DELIVERED


def test_retry_now_requeues_failed_notifications_audited_and_skips_delivered(
        admin_client: Any, org: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any) -> None:
    failed = NotificationFactory(organization=org, status=NotificationStatus.FAILED, attempts=8,
                                 last_error="gave up after 8 attempts: HTTP 503")
    delivered = NotificationFactory(organization=org, status=NotificationStatus.DELIVERED, attempts=1)
    suppressed = NotificationFactory(organization=org, status=NotificationStatus.SUPPRESSED)
    sent: list[tuple[str, list[int]]] = []
    monkeypatch.setattr("apps.alerts.delivery.current_app.send_task",
                        lambda name, args: sent.append((name, args)))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANGELIST, {"action": "retry_now",
                                                  "_selected_action": [failed.pk, delivered.pk, suppressed.pk]},
                                     follow=True)

    assert response.status_code == 200
    assert b"1 notification(s) queued" in response.content and b"2 skipped" in response.content
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (NotificationStatus.PENDING, 0)
    assert Notification.objects.get(pk=delivered.pk).status == NotificationStatus.DELIVERED
    assert Notification.objects.get(pk=suppressed.pk).status == NotificationStatus.SUPPRESSED
    assert sent == [(DELIVER_TASK, [failed.pk])]
    [event] = AuditEvent.objects.filter(action="notification.retried")
    assert event.object_id == str(failed.public_id) and event.organization_id == org.pk
    assert event.changes["status"] == ["failed", "pending"] and event.changes["attempts"] == [8, 0]
    assert event.actor_repr == "admin"


def test_retry_now_needs_the_change_permission(client: Any, org: Any) -> None:
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="auditor", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(viewer)
    failed = NotificationFactory(organization=org, status=NotificationStatus.FAILED)

    page = client.get(CHANGELIST)
    assert page.status_code == 200 and b"retry_now" not in page.content
    client.post(CHANGELIST, {"action": "retry_now", "_selected_action": [failed.pk]})
    assert Notification.objects.get(pk=failed.pk).status == NotificationStatus.FAILED


def test_the_retry_service_gives_a_fresh_budget_and_the_ledger_keeps_numbering(
        org: Any, receiver: HttpReceiver, django_capture_on_commit_callbacks: Any) -> None:
    channel = NotificationChannelFactory(organization=org, url=receiver.url)
    failed = NotificationFactory(organization=org, channel=channel, status=NotificationStatus.FAILED, attempts=2)
    for number in (1, 2):
        DeliveryAttempt.objects.create(notification=failed, number=number, error="HTTP 503", response_status=503)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert retry_notifications(notifications=[failed], actor=None) == [failed.pk]
    assert len(callbacks) == 1
    assert AuditEvent.objects.get(action="notification.retried").actor_repr == "system"
    deliver_notification.delay(failed.pk)  # what the deferred deliver task does

    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (NotificationStatus.DELIVERED, 1)
    assert [(a.number, a.ok) for a in failed.attempt_rows.order_by("number")] == [(1, False), (2, False), (3, True)]
    assert len(receiver.requests) == 1
