"""0004_group_escalation both ways: forwards it adds group routes, group runs and the group of an on-call
assignment (existing assignments keep working, with no group); backwards it drops them again and the
assignments stay."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = ("escalation", "0003_contacts_verification_shift_changes")
AFTER = ("escalation", "0004_group_escalation")


def _apps_at(target: tuple[str, str]):
    return MigrationExecutor(connection).loader.project_state([target]).apps


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def _assignment(apps, organization) -> None:
    apps.get_model("escalation", "OnCallAssignment").objects.create(
        organization=organization, alert_public_id=uuid.uuid4(), escalation_id=uuid.uuid4(), step_index=0, repeat=0,
        username="alice", reason="notify_user", at=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_group_escalation_migrates_forwards_and_backwards():
    try:
        call_command("migrate", *BEFORE, verbosity=0)
        assert "escalation_grouproute" not in _tables()
        old = _apps_at(BEFORE)
        organization = old.get_model("organizations", "Organization").objects.create(name="Acme", slug="acme")
        _assignment(old, organization)

        call_command("migrate", *AFTER, verbosity=0)
        new = _apps_at(AFTER)
        assert {"escalation_grouproute", "escalation_groupescalationrun"} <= _tables()
        assert list(new.get_model("escalation", "OnCallAssignment").objects.values_list("group_id", flat=True)) == [
            None]
        org = new.get_model("organizations", "Organization").objects.get()
        policy = new.get_model("escalation", "EscalationPolicy").objects.create(organization=org, name="p")
        new.get_model("escalation", "GroupRoute").objects.create(organization=org, name="storage", policy=policy,
                                                                  matchers={"team": "storage"})

        call_command("migrate", *BEFORE, verbosity=0)
        assert not {"escalation_grouproute", "escalation_groupescalationrun"} & _tables()
        assert _apps_at(BEFORE).get_model("escalation", "OnCallAssignment").objects.count() == 1
    finally:
        call_command("migrate", verbosity=0)
