"""record_event, snapshot and diff: who, what, and a diff without secrets, in the caller's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.audit.services import diff, record_event, record_update, snapshot
from apps.core.middleware import RequestContext, current_request

pytestmark = pytest.mark.django_db


def test_record_event_names_a_user_actor_and_the_target(owner, org):
    event = record_event(action="organization.updated", actor=owner, organization=org, target=org,
                         before={"name": "Old"}, after={"name": "Acme"})
    assert (event.actor_type, event.actor_user_id, event.actor_repr) == ("user", owner.pk, "alice")
    assert (event.object_type, event.object_id, event.object_repr) == (
        "organizations.organization", str(org.public_id), "Acme")
    assert event.organization_id == org.pk
    assert event.changes == {"name": ["Old", "Acme"]}


def test_record_event_names_a_token_actor(make_token, org):
    token, _ = make_token()
    event = record_event(action="x.done", actor=token, organization=org.pk)
    assert (event.actor_type, event.actor_token_id) == ("token", token.pk)
    assert event.actor_repr == f"token {token.name} ({token.prefix})"
    assert event.organization_id == org.pk


def test_record_event_without_actor_is_the_system(org):
    event = record_event(action="x.done", actor=None, organization=org)
    assert (event.actor_type, event.actor_repr) == ("system", "system")


def test_record_event_copies_the_request_context(org):
    token = current_request.set(RequestContext("req-abcdef12", "192.0.2.7", "telegraf/1.30"))
    try:
        event = record_event(action="x.done", actor=None, organization=org)
    finally:
        current_request.reset(token)
    assert (event.request_id, event.ip, event.user_agent) == ("req-abcdef12", "192.0.2.7", "telegraf/1.30")


def test_record_event_rolls_back_with_the_change(org):
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(action="x.rolled_back", actor=None, organization=org)
        raise RuntimeError("the change failed")
    assert not AuditEvent.objects.filter(action="x.rolled_back").exists()


def test_snapshot_leaves_out_secrets_and_timestamps(make_token):
    token, _ = make_token()
    data = snapshot(token)
    assert "token_hash" not in data
    assert not {"id", "created_at", "updated_at"} & set(data)
    assert data["public_id"] == str(token.public_id)
    assert data["organization"] == token.organization_id


def test_diff_keeps_only_changed_fields():
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
    assert diff(None, {"a": 1}) == {"a": [None, 1]}
    assert diff({"a": 1}, None) == {"a": [1, None]}


def test_explicit_changes_are_stored_as_given(org):
    event = record_event(action="x.done", actor=None, organization=org, changes={"format": "csv"})
    assert event.changes == {"format": "csv"}


def test_record_update_writes_a_row_only_when_the_snapshots_differ(org) -> None:
    before = snapshot(org)
    assert record_update(action="organization.updated", actor=None, organization=org, target=org,
                         before=before, after=dict(before)) is None
    assert not AuditEvent.objects.filter(action="organization.updated").exists()

    event = record_update(action="organization.updated", actor=None, organization=org, target=org,
                          before=before, after={**before, "name": "Renamed"})
    assert event is not None and event.changes == {"name": [before["name"], "Renamed"]}
    assert AuditEvent.objects.filter(action="organization.updated").count() == 1
