"""Channels another app manages (``managed_by`` set, e.g. a person's contact address) are invisible to the
channels API and pages, cannot be attached to rules and are read-only in the admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.alerts.models import AlertRule, NotificationChannel
from apps.alerts.services import config
from apps.audit.models import AuditEvent
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.test_views_config import rule_data
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db

RULE = {"name": "cpu high", "kind": "threshold", "metric": "cpu_usage", "reducer": "avg", "window": 60,
        "comparator": ">", "critical": 90, "for": 0}


@pytest.fixture
def managed(org):
    return NotificationChannelFactory(organization=org, name="contact:private", managed_by="someapp",
                                      url="http://127.0.0.1:9/private")


@pytest.fixture
def plain(org):
    return NotificationChannelFactory(organization=org, name="ops hook")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- API -----------------------------------------------------------------------------------------------


def test_the_channels_api_lists_only_user_configured_channels(api_client, owner, managed, plain):
    response = api_client(user=owner).get("/api/v1/channels")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]] if "results" in response.json() else \
        [row["id"] for row in response.json()]
    assert ids == [str(plain.public_id)]


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_a_managed_channel_is_404_on_every_channel_endpoint(api_client, owner, managed, method):
    client = api_client(user=owner)
    url = f"/api/v1/channels/{managed.public_id}"
    response = getattr(client, method)(url, {"name": "mine now", "kind": "webhook", "url": "http://x.test/"},
                                       format="json")
    assert response.status_code == 404
    assert client.post(f"{url}/rotate-secret").status_code == 404
    managed.refresh_from_db()
    assert managed.name == "contact:private" and managed.url == "http://127.0.0.1:9/private"
    assert not AuditEvent.objects.filter(action__startswith="notification_channel.").exists()


def test_a_rule_cannot_use_a_managed_channel(api_client, editor, managed, plain):
    client = api_client(user=editor)
    response = client.post("/api/v1/rules", {**RULE, "channels": [str(managed.public_id)]}, format="json")
    assert response.status_code == 400 and "channels" in response.json()
    assert not AlertRule.objects.exists()
    response = client.post("/api/v1/rules", {**RULE, "channels": [str(plain.public_id)]}, format="json")
    assert response.status_code == 201
    rule_id = response.json()["id"]
    response = client.patch(f"/api/v1/rules/{rule_id}", {"channels": [str(managed.public_id)]}, format="json")
    assert response.status_code == 400 and "channels" in response.json()
    assert list(AlertRule.objects.get().channels.all()) == [plain]


def test_the_service_refuses_a_managed_channel_for_a_rule(org, managed):
    with pytest.raises(config.ValidationError) as caught:
        config.create_rule(organization=org, actor=None, channels=[managed], name="r", kind="threshold",
                           metric="cpu", window_seconds=60, comparator=">", critical=1)
    assert "channels" in caught.value.message_dict


# --- pages ---------------------------------------------------------------------------------------------


def test_the_channel_pages_hide_managed_channels(owner, org, managed, plain):
    client = _client(owner)
    page = client.get(reverse("alerts:channels", args=[org.slug])).content.decode()
    assert "ops hook" in page and "contact:private" not in page and "127.0.0.1:9/private" not in page
    for name in ("channel-detail", "channel-edit"):
        assert client.get(reverse(f"alerts:{name}", args=[org.slug, managed.public_id])).status_code == 404, name
    for name in ("channel-edit", "channel-delete", "channel-rotate-secret"):
        assert client.post(reverse(f"alerts:{name}", args=[org.slug, managed.public_id]),
                           {"name": "x", "kind": "webhook", "url": "http://x.test/"}).status_code == 404, name
    assert NotificationChannel.objects.get(pk=managed.pk).name == "contact:private"


def test_the_rule_form_offers_no_managed_channel(editor, org, managed, plain):
    client = _client(editor)
    page = client.get(reverse("alerts:rule-create", args=[org.slug])).content.decode()
    assert "ops hook" in page and "contact:private" not in page
    response = client.post(reverse("alerts:rule-create", args=[org.slug]),
                           rule_data(channels=[str(managed.public_id)]))
    assert response.status_code == 400 and "channels" in response.context["form"].errors
    assert not AlertRule.objects.exists()


# --- admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_shows_a_managed_channel_read_only(root, managed, plain):
    change = reverse("admin:alerts_notificationchannel_change", args=[managed.pk])
    page = root.get(change)
    assert page.status_code == 200 and b'name="name"' not in page.content  # view-only, no inputs
    root.post(change, {"organization": managed.organization_id, "name": "stolen", "kind": "webhook",
                       "url": "http://evil.test/", "headers": "{}", "rate_limit_per_minute": 0})
    assert root.post(reverse("admin:alerts_notificationchannel_delete", args=[managed.pk]),
                     {"post": "yes"}).status_code == 403
    managed.refresh_from_db()
    assert managed.name == "contact:private" and managed.url == "http://127.0.0.1:9/private"
    plain_page = root.get(reverse("admin:alerts_notificationchannel_change", args=[plain.pk]))
    assert b'name="name"' in plain_page.content


def test_admin_bulk_actions_leave_managed_channels_alone(root, managed, plain):
    secret = managed.signing_secret
    changelist = reverse("admin:alerts_notificationchannel_changelist")
    root.post(changelist, {"action": "rotate_secrets", "_selected_action": [managed.pk, plain.pk]})
    managed.refresh_from_db()
    assert managed.signing_secret == secret
    root.post(changelist, {"action": "delete_selected", "_selected_action": [managed.pk, plain.pk], "post": "yes"})
    assert NotificationChannel.objects.filter(pk=managed.pk).exists()


def test_the_rule_admin_offers_no_managed_channel(root, managed, plain):
    page = root.get(reverse("admin:alerts_alertrule_add")).content.decode()
    assert "ops hook" in page and "contact:private" not in page
