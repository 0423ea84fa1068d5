"""A host's organization is fixed after creation: the service refuses a change and the API's update
names the field in a 400 (the admin side is in test_admin.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.hosts.services import update_host
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db


def test_update_host_refuses_another_organization(org, other_org, owner):
    host = HostFactory(organization=org, name="web-1")
    with pytest.raises(ValidationError) as caught:
        update_host(host=host, actor=owner, organization=other_org, environment="staging")
    assert caught.value.message_dict == {"organization": ["A host's organization cannot be changed after creation."]}
    host.refresh_from_db()
    assert (host.organization_id, host.environment) == (org.pk, "production")
    assert not AuditEvent.objects.filter(action="host.updated").exists()


def test_update_host_accepts_the_current_organization_unchanged(org, owner):
    host = HostFactory(organization=org, name="web-1")
    update_host(host=host, actor=owner, organization=org, environment="staging")
    host.refresh_from_db()
    assert (host.organization_id, host.environment) == (org.pk, "staging")


@pytest.mark.parametrize("value", ["other-org-id", None, ""])
def test_api_update_naming_the_organization_is_a_400_naming_the_field(api_client, owner, org, other_org, value):
    host = HostFactory(organization=org, name="web-1")
    value = str(other_org.public_id) if value == "other-org-id" else value
    response = api_client(user=owner).patch(f"/api/v1/hosts/{host.public_id}",
                                            {"organization": value, "environment": "staging"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"organization": ["A host's organization cannot be changed after creation."]}
    host.refresh_from_db()
    assert (host.organization_id, host.environment) == (org.pk, "production")


def test_api_update_without_the_organization_still_works(api_client, owner, org):
    host = HostFactory(organization=org, name="web-1")
    response = api_client(user=owner).patch(f"/api/v1/hosts/{host.public_id}", {"name": "web-one"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "web-one"
    host.refresh_from_db()
    assert (host.organization_id, host.name) == (org.pk, "web-one")
