"""The audit log page and its export: admins only, filters, keyset pages, streamed CSV/JSON."""

from __future__ import annotations

import csv
import datetime
import io
import json

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.audit.views import PAGE_SIZE
from apps.core.roles import Role

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _backdate(event: AuditEvent, days: int) -> None:
    """Move an event into the past; the append-only trigger is lifted for this test-only rewrite."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute("UPDATE audit_auditevent SET created_at = created_at - make_interval(days => %s) "
                       "WHERE id = %s", [days, event.pk])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
    event.refresh_from_db()


def _stream(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(("role", "status"), [
    (Role.OWNER, 200), (Role.ADMIN, 200), (Role.EDITOR, 403), (Role.VIEWER, 403),
])
@pytest.mark.parametrize("name", ["audit:list", "audit:export"])
def test_audit_pages_are_for_owners_and_admins(user_with_role, org, role, status, name):
    response = _client(user_with_role(role)).get(reverse(name, args=[org.slug]))
    assert response.status_code == status


@pytest.mark.parametrize("name", ["audit:list", "audit:export"])
def test_audit_pages_other_org_gets_404(other_org_user, org, name):
    assert _client(other_org_user).get(reverse(name, args=[org.slug])).status_code == 404


@pytest.mark.parametrize("name", ["audit:list", "audit:export"])
def test_audit_pages_send_anonymous_users_to_login(client, org, name):
    response = client.get(reverse(name, args=[org.slug]))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_audit_list_shows_only_this_organizations_events_with_their_diff(owner, org, other_org):
    record_event(action="host.updated", actor=owner, organization=org, object_type="hosts.host", object_id="h1",
                 object_repr="web-1", before={"name": "web-old"}, after={"name": "web-1"})
    record_event(action="host.updated", actor=None, organization=other_org, object_repr="globex-secret-host")
    response = _client(owner).get(reverse("audit:list", args=[org.slug]))
    body = response.content.decode()
    assert "web-1" in body and "web-old" in body
    assert "globex-secret-host" not in body


@pytest.mark.parametrize(("params", "expected"), [
    ({"actor": "ALI"}, {"mine.created"}),
    ({"action": "token."}, {"token.created", "token.revoked"}),
    ({"action": "token.revoked"}, {"token.revoked"}),
    ({"object_type": "hosts.host"}, {"mine.created"}),
    ({"object_id": "tok-1"}, {"token.created", "token.revoked"}),
])
def test_audit_list_filters(owner, org, params, expected):
    record_event(action="mine.created", actor=owner, organization=org, object_type="hosts.host", object_id="h1")
    record_event(action="token.created", actor=None, organization=org, object_type="x.token", object_id="tok-1")
    record_event(action="token.revoked", actor=None, organization=org, object_type="x.token", object_id="tok-1")
    response = _client(owner).get(reverse("audit:list", args=[org.slug]), params)
    actions = {event.action for event, _ in response.context["rows"]}
    assert actions - {"membership.created"} == expected


def test_audit_list_filters_by_period_with_inclusive_days(owner, org):
    old = record_event(action="period.old", actor=None, organization=org)
    mid = record_event(action="period.mid", actor=None, organization=org)
    record_event(action="period.new", actor=None, organization=org)
    _backdate(old, 10)
    _backdate(mid, 5)
    day = mid.created_at.date()
    response = _client(owner).get(reverse("audit:list", args=[org.slug]),
                                  {"from": day.isoformat(), "to": day.isoformat(), "action": "period."})
    assert [event.action for event, _ in response.context["rows"]] == ["period.mid"]


def test_audit_list_rejects_a_reversed_period(owner, org):
    response = _client(owner).get(reverse("audit:list", args=[org.slug]), {"from": "2026-02-01", "to": "2026-01-01"})
    assert response.status_code == 400  # was a 200: an empty page with the error could pass for "no events"
    assert response.context["rows"] == []
    assert response.context["form"].errors
    assert "The period must not end before it starts." in response.content.decode()


def test_audit_list_pages_newest_first_with_keyset_cursors(owner, org):
    for n in range(PAGE_SIZE + 5):
        record_event(action=f"page.e{n:03d}", actor=None, organization=org)
    url = reverse("audit:list", args=[org.slug])
    client = _client(owner)
    first = client.get(url, {"action": "page."})
    first_actions = [event.action for event, _ in first.context["rows"]]
    assert first_actions[0] == f"page.e{PAGE_SIZE + 4:03d}"
    assert len(first_actions) == PAGE_SIZE
    assert first.context["newer_cursor"] is None
    older = client.get(url, {"action": "page.", "before": first.context["older_cursor"]})
    assert [event.action for event, _ in older.context["rows"]] == [f"page.e{n:03d}" for n in range(4, -1, -1)]
    assert older.context["older_cursor"] is None
    back = client.get(url, {"action": "page.", "after": older.context["newer_cursor"]})
    assert [event.action for event, _ in back.context["rows"]] == first_actions


def test_audit_list_ignores_a_cursor_from_another_organization(owner, org, other_org):
    foreign = record_event(action="foreign.event", actor=None, organization=other_org)
    response = _client(owner).get(reverse("audit:list", args=[org.slug]), {"before": str(foreign.public_id)})
    assert response.status_code == 200
    assert response.context["newer_cursor"] is None


def test_export_csv_streams_the_filtered_period_oldest_first(owner, org, other_org):
    record_event(action="exp.first", actor=owner, organization=org, object_repr="a, \"quoted\" name",
                 before={"x": 1}, after={"x": 2})
    record_event(action="exp.second", actor=None, organization=org)
    record_event(action="other.skip", actor=None, organization=org)
    record_event(action="exp.foreign", actor=None, organization=other_org)
    today = datetime.date.today().isoformat()
    response = _client(owner).get(reverse("audit:export", args=[org.slug]),
                                  {"format": "csv", "action": "exp.", "from": today, "to": today})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="audit-acme-{today}--{today}.csv"'
    rows = list(csv.DictReader(io.StringIO(_stream(response).decode())))
    assert [row["action"] for row in rows] == ["exp.first", "exp.second"]
    assert rows[0]["object_repr"] == 'a, "quoted" name'
    assert json.loads(rows[0]["changes"]) == {"x": [1, 2]}
    assert rows[0]["actor"] == "alice"


def test_export_csv_defuses_spreadsheet_formulas(owner, org):
    record_event(action="csv.formula", actor=None, organization=org, object_repr="=HYPERLINK(\"http://evil\")")
    response = _client(owner).get(reverse("audit:export", args=[org.slug]), {"format": "csv", "action": "csv."})
    [row] = csv.DictReader(io.StringIO(_stream(response).decode()))
    assert row["object_repr"] == "'=HYPERLINK(\"http://evil\")"


def test_audit_list_links_each_object_to_its_history(owner, org):
    record_event(action="host.updated", actor=None, organization=org, object_type="hosts.host", object_id="h-42",
                 object_repr="web-42")
    body = _client(owner).get(reverse("audit:list", args=[org.slug])).content.decode()
    assert "?object_type=hosts.host&amp;object_id=h-42" in body


def test_export_json_is_one_valid_document_across_batches(owner, org, monkeypatch):
    from apps.audit import export

    real = export.stream_events
    monkeypatch.setattr("apps.audit.views.stream_events", lambda qs, fmt: real(qs, fmt, batch_size=3))
    for n in range(8):
        record_event(action=f"json.e{n}", actor=None, organization=org)
    response = _client(owner).get(reverse("audit:export", args=[org.slug]), {"format": "json", "action": "json."})
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')
    assert "audit-acme-start--" in response["Content-Disposition"]
    data = json.loads(_stream(response))
    assert [item["action"] for item in data] == [f"json.e{n}" for n in range(8)]
    assert set(data[0]) >= {"id", "created_at", "actor", "action", "object_type", "object_id", "changes"}


def test_export_of_nothing_is_still_valid_json(owner, org):
    response = _client(owner).get(reverse("audit:export", args=[org.slug]), {"format": "json", "action": "none."})
    assert json.loads(_stream(response)) == []


def test_export_is_audited(owner, org):
    _client(owner).get(reverse("audit:export", args=[org.slug]), {"format": "csv", "action": "x."})
    event = AuditEvent.objects.for_org(org).get(action="audit.exported")
    assert event.actor_repr == "alice"
    assert event.changes == {"format": "csv", "filters": {"action": "x."}}


@pytest.mark.parametrize("params", [{"format": "xml"}, {"format": "csv", "from": "not-a-date"}])
def test_export_rejects_bad_parameters(owner, org, params):
    assert _client(owner).get(reverse("audit:export", args=[org.slug]), params).status_code == 400


def test_export_streams_an_async_iterator_under_asgi(owner, org):
    """Under daphne a sync iterator would be read whole into memory; the ASGI path must stay async."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    for n in range(3):
        record_event(action=f"asgi.e{n}", actor=None, organization=org)

    async def fetch():
        client = AsyncClient()
        await client.aforce_login(owner)
        response = await client.get(reverse("audit:export", args=[org.slug]), {"format": "json", "action": "asgi."})
        return response, b"".join([chunk async for chunk in response.streaming_content])

    response, body = async_to_sync(fetch)()
    assert response.is_async
    assert [item["action"] for item in json.loads(body)] == ["asgi.e0", "asgi.e1", "asgi.e2"]
