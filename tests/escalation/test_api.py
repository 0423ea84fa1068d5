"""/api/v1/schedules: the public contract end to end with a config token from `manage.py issue_token`,
the role and token-scope matrices, 400s naming the field, and other organizations' objects as 404."""

from __future__ import annotations

import datetime as dt
import io
from urllib.parse import quote

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.escalation.models import OnCallSchedule, ScheduleOverride
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory, ScheduleOverrideFactory

pytestmark = pytest.mark.django_db


def _issue(org_slug: str, scope: str) -> str:
    out = io.StringIO()
    call_command("issue_token", org_slug, f"oncall-{scope}", "--scope", scope, stdout=out)
    return out.getvalue().strip()


def _body(*members: str, **layer: object) -> dict:
    return {"name": "Primary", "time_zone": "Europe/Berlin",
            "layers": [{"rotation": "daily", "handoff_time": "09:00", "start_date": "2026-03-27",
                        "members": list(members), **layer}]}


def test_public_contract_end_to_end_with_a_config_token(api_client, org, owner, editor):
    client = api_client(token=_issue("acme", "config"))
    created = client.post("/api/v1/schedules", _body("alice", "erin"), format="json")
    assert created.status_code == 201, created.json()
    schedule_id = created.json()["id"]
    assert created.json()["layers"][0]["members"] == ["alice", "erin"]

    def oncall(at: str) -> list[str]:
        response = client.get(f"/api/v1/schedules/{schedule_id}/oncall?at={quote(at)}")
        assert response.status_code == 200, response.json()
        return response.json()["users"]

    assert oncall("2026-03-27T08:59:59+01:00") == []  # before start_date at handoff_time
    assert oncall("2026-03-27T09:00:00+01:00") == ["alice"]  # the first member from start_date 09:00 local
    assert oncall("2026-03-28T09:00:00+01:00") == ["erin"]
    assert oncall("2026-03-29T08:59:59+02:00") == ["erin"]  # DST began overnight: still 09:00 local
    assert oncall("2026-03-29T07:00:00Z") == ["alice"]
    # An unencoded "+" arrives as a space; it is put back.
    assert client.get(f"/api/v1/schedules/{schedule_id}/oncall?at=2026-03-29T09:00:00+02:00").json()["users"] \
        == ["alice"]
    assert client.get(f"/api/v1/schedules/{schedule_id}/oncall").status_code == 200  # default: now

    assert [s["id"] for s in client.get("/api/v1/schedules").json()["results"]] == [schedule_id]
    assert client.get(f"/api/v1/schedules/{schedule_id}").json()["time_zone"] == "Europe/Berlin"
    patched = client.patch(f"/api/v1/schedules/{schedule_id}", {"name": "Renamed"}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
    assert patched.json()["layers"][0]["members"] == ["alice", "erin"]  # untouched without "layers"

    override = client.post(f"/api/v1/schedules/{schedule_id}/overrides",
                           {"user": "erin", "start": "2026-03-29T10:00:00+02:00", "end": "2026-03-29T12:00:00Z"},
                           format="json")
    assert override.status_code == 201, override.json()
    assert oncall("2026-03-29T11:00:00+02:00") == ["erin"]
    shifts = client.get(f"/api/v1/schedules/{schedule_id}/shifts",
                        {"start": "2026-03-29T00:00:00Z", "end": "2026-03-30T00:00:00Z"}).json()["shifts"]
    assert shifts == [
        {"user": "erin", "start": "2026-03-29T00:00:00Z", "end": "2026-03-29T07:00:00Z", "source": "layer:0"},
        {"user": "alice", "start": "2026-03-29T07:00:00Z", "end": "2026-03-29T08:00:00Z", "source": "layer:0"},
        {"user": "erin", "start": "2026-03-29T08:00:00Z", "end": "2026-03-29T12:00:00Z", "source": "override"},
        {"user": "alice", "start": "2026-03-29T12:00:00Z", "end": "2026-03-30T00:00:00Z", "source": "layer:0"},
    ]
    override_id = override.json()["id"]
    moved = client.patch(f"/api/v1/schedules/{schedule_id}/overrides/{override_id}",
                         {"start": "2026-03-29T09:00:00Z", "user": "alice"}, format="json")
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["user"], moved.json()["start"]) == ("alice", "2026-03-29T09:00:00Z")
    assert client.patch(f"/api/v1/schedules/{schedule_id}/overrides/{override_id}",
                        {"start": "2026-03-29T13:00:00Z"}, format="json").json() == {
        "end": ["An override must end after it starts."]}
    assert client.patch(f"/api/v1/schedules/{schedule_id}/overrides/{override_id}",
                        {"start": "2026-03-29T08:00:00Z", "user": "erin"}, format="json").status_code == 200
    assert client.get(f"/api/v1/schedules/{schedule_id}/overrides?all=1").json()["results"][0]["id"] == override_id
    assert client.delete(f"/api/v1/schedules/{schedule_id}/overrides/{override_id}").status_code == 204
    assert oncall("2026-03-29T11:00:00+02:00") == ["alice"]

    assert client.delete(f"/api/v1/schedules/{schedule_id}").status_code == 204
    assert not OnCallSchedule.objects.exists()
    actions = list(AuditEvent.objects.filter(object_type__startswith="escalation.").order_by("pk")
                   .values_list("action", "actor_type"))
    assert actions == [("schedule.created", "token"), ("schedule.updated", "token"),
                       ("schedule.override_created", "token"), ("schedule.override_updated", "token"),
                       ("schedule.override_updated", "token"), ("schedule.override_deleted", "token"),
                       ("schedule.deleted", "token")]


def test_layer_options_round_trip(api_client, org, owner, editor):
    client = api_client(user=owner)
    body = {"name": "Follow the sun", "time_zone": "America/New_York", "layers": [
        {"rotation": "weekly", "handoff_time": "02:30", "start_date": "2026-03-01", "members": ["alice"]},
        {"rotation": "custom", "shift_seconds": 43200, "handoff_time": "09:00", "start_date": "2026-03-01",
         "members": ["erin", "alice", "erin"], "priority": 9, "name": "business",
         "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]},
    ]}
    response = client.post("/api/v1/schedules", body, format="json")
    assert response.status_code == 201, response.json()
    layers = response.json()["layers"]
    assert [(layer["priority"], layer["rotation"], layer["shift_seconds"]) for layer in layers] == [
        (0, "weekly", None), (9, "custom", 43200)]
    assert layers[1]["members"] == ["erin", "alice", "erin"]
    assert layers[1]["restrictions"] == [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                                          "end": "17:00"}]
    schedule_id = response.json()["id"]
    # Monday 2026-03-09 10:00 EDT: the business layer; 12-hour wall-clock turns from 03-01 09:00 make this
    # turn 16 (193 local hours in), and 16 % 3 is alice.
    oncall = client.get(f"/api/v1/schedules/{schedule_id}/oncall", {"at": "2026-03-09T14:00:00Z"}).json()
    assert (oncall["users"], oncall["source"]) == (["alice"], "layer:9")
    # Saturday: the business layer is off, the weekly one is on.
    oncall = client.get(f"/api/v1/schedules/{schedule_id}/oncall", {"at": "2026-03-07T15:00:00Z"}).json()
    assert (oncall["users"], oncall["source"]) == (["alice"], "layer:0")
    replaced = client.patch(f"/api/v1/schedules/{schedule_id}", {"layers": [
        {"rotation": "daily", "handoff_time": "08:00", "start_date": "2026-03-01", "members": ["erin"]}]},
        format="json")
    assert replaced.status_code == 200
    assert [layer["members"] for layer in replaced.json()["layers"]] == [["erin"]]


@pytest.mark.parametrize(("members", "named"), [(["alice", "charlie"], "charlie"), (["alice", "nobody"], "nobody")])
def test_members_must_belong_to_the_organization(api_client, org, owner, other_org_user, members, named):
    response = api_client(user=owner).post("/api/v1/schedules", _body(*members), format="json")
    assert response.status_code == 400
    assert named in response.json()["layers"][0]["members"][0]
    assert not OnCallSchedule.objects.exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"name": ""}, "name"),
    ({"layers": [{"rotation": "monthly", "handoff_time": "09:00", "start_date": "2026-01-01",
                  "members": ["alice"]}]}, "layers"),
    ({"layers": [{"rotation": "daily", "handoff_time": "9am", "start_date": "2026-01-01",
                  "members": ["alice"]}]}, "layers"),
    ({"layers": [{"rotation": "custom", "handoff_time": "09:00", "start_date": "2026-01-01",
                  "members": ["alice"]}]}, "layers"),
    ({"layers": [{"rotation": "daily", "handoff_time": "09:00", "start_date": "2026-01-01", "members": []}]},
     "layers"),
    ({"layers": [{"rotation": "daily", "handoff_time": "09:00", "start_date": "9999-12-31", "members": ["alice"]}]},
     "layers"),
    ({"layers": [{"rotation": "daily", "handoff_time": "09:00", "start_date": "2026-01-01", "members": ["alice"],
                  "restrictions": [{"days": ["mon"], "start": "09:00", "end": "25:00"}]}]}, "layers"),
    ({"layers": [{"rotation": "daily", "handoff_time": "09:00", "start_date": "2026-01-01", "members": ["alice"],
                  "priority": 1},
                 {"rotation": "daily", "handoff_time": "09:00", "start_date": "2026-01-01", "members": ["alice"],
                  "priority": 1}]}, "layers"),
])
def test_bad_input_is_a_400_naming_the_field(api_client, org, owner, change, field):
    response = api_client(user=owner).post("/api/v1/schedules", {**_body("alice"), **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_duplicate_name_is_a_400_naming_the_field(api_client, org, owner):
    client = api_client(user=owner)
    assert client.post("/api/v1/schedules", _body("alice"), format="json").status_code == 201
    response = client.post("/api/v1/schedules", _body("alice"), format="json")
    assert response.status_code == 400 and "name" in response.json()


@pytest.mark.parametrize(("path", "params", "field"), [
    ("oncall", {"at": "2026-03-29T09:00:00"}, "at"),  # no offset
    ("oncall", {"at": "yesterday"}, "at"),
    ("oncall", {"at": "9999-12-31T23:59:59Z"}, "at"),  # would overflow in a zone east of UTC
    ("shifts", {"start": "2026-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "end"),
    ("shifts", {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
    ("overrides", {"all": "yes"}, "all"),  # a boolean that is not one was read as "no", silently
])
def test_bad_query_parameters_are_a_400_naming_them(api_client, org, owner, path, params, field):
    schedule = OnCallScheduleFactory(organization=org)
    response = api_client(user=owner).get(f"/api/v1/schedules/{schedule.public_id}/{path}", params)
    assert response.status_code == 400 and field in response.json()


@pytest.mark.parametrize(("body", "field"), [
    ({"user": "charlie", "start": "2026-05-01T10:00:00Z", "end": "2026-05-01T12:00:00Z"}, "user"),
    ({"user": "alice", "start": "2026-05-01T10:00:00", "end": "2026-05-01T12:00:00Z"}, "start"),
    ({"user": "alice", "start": "2026-05-01T12:00:00Z", "end": "2026-05-01T10:00:00Z"}, "end"),
])
def test_bad_overrides_are_a_400_naming_the_field(api_client, org, owner, other_org_user, body, field):
    schedule = OnCallScheduleFactory(organization=org)
    response = api_client(user=owner).post(f"/api/v1/schedules/{schedule.public_id}/overrides", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not ScheduleOverride.objects.exists()


# --- roles and scopes --------------------------------------------------------------------------------

ROLE_EXPECTATIONS = [  # (role, may read, may create/update and manage overrides, may delete schedules)
    (Role.VIEWER, True, False, False),
    (Role.EDITOR, True, True, False),
    (Role.ADMIN, True, True, True),
    (Role.OWNER, True, True, True),
]


def _exercise(client, org, member_username: str) -> dict[str, int]:
    """One request per endpoint; the status code of each."""
    schedule = OnCallScheduleFactory(organization=org)
    override = ScheduleOverrideFactory(schedule=schedule, user=schedule.organization.memberships.first().user)
    base = f"/api/v1/schedules/{schedule.public_id}"
    override_body = {"user": member_username, "start": "2026-05-01T10:00:00Z", "end": "2026-05-01T11:00:00Z"}
    return {
        "list": client.get("/api/v1/schedules").status_code,
        "retrieve": client.get(base).status_code,
        "oncall": client.get(f"{base}/oncall").status_code,
        "shifts": client.get(f"{base}/shifts").status_code,
        "overrides": client.get(f"{base}/overrides").status_code,
        "override": client.get(f"{base}/overrides/{override.public_id}").status_code,
        "create": client.post("/api/v1/schedules", {**_body(member_username), "name": "new"},
                              format="json").status_code,
        "update": client.patch(base, {"description": "x"}, format="json").status_code,
        "create_override": client.post(f"{base}/overrides", override_body, format="json").status_code,
        "update_override": client.patch(f"{base}/overrides/{override.public_id}", {"end": "2026-05-01T13:00:00Z"},
                                        format="json").status_code,
        "delete_override": client.delete(f"{base}/overrides/{override.public_id}").status_code,
        "destroy": client.delete(base).status_code,
    }


READS = {"list": 200, "retrieve": 200, "oncall": 200, "shifts": 200, "overrides": 200, "override": 200}
WRITES = {"create": 201, "update": 200, "create_override": 201, "update_override": 200, "delete_override": 204}


@pytest.mark.parametrize(("role", "read", "write", "delete"), ROLE_EXPECTATIONS)
def test_schedule_endpoints_follow_the_role_matrix(api_client, user_with_role, org, role, read, write, delete):
    user = user_with_role(role)
    got = _exercise(api_client(user=user), org, user.username)
    expected = {**{k: v if read else 403 for k, v in READS.items()},
                **{k: v if write else 403 for k, v in WRITES.items()}, "destroy": 204 if delete else 403}
    assert got == expected


@pytest.mark.parametrize(("scope", "read", "write"), [("config", True, True), ("read", True, False),
                                                      ("ingest", False, False)])
def test_schedule_endpoints_follow_the_token_scope_matrix(api_client, org, owner, scope, read, write):
    got = _exercise(api_client(token=_issue("acme", scope)), org, "alice")
    expected = {**{k: v if read else 403 for k, v in READS.items()},
                **{k: v if write else 403 for k, v in WRITES.items()}, "destroy": 204 if write else 403}
    assert got == expected


def test_anonymous_requests_are_refused(api_client, org):
    schedule = OnCallScheduleFactory(organization=org)
    assert api_client().get(f"/api/v1/schedules/{schedule.public_id}/oncall").status_code in (401, 403)


# --- other organizations ------------------------------------------------------------------------------


def test_other_orgs_schedules_get_404(api_client, org, owner, other_org, other_org_user):
    theirs = OnCallScheduleFactory(organization=other_org)
    ScheduleLayerFactory(schedule=theirs, users=[other_org_user])
    override = ScheduleOverrideFactory(schedule=theirs, user=other_org_user)
    client = api_client(user=owner)
    base = f"/api/v1/schedules/{theirs.public_id}"
    assert client.get("/api/v1/schedules").json()["results"] == []
    assert client.get(base).status_code == 404
    assert client.get(f"{base}/oncall").status_code == 404
    assert client.get(f"{base}/shifts").status_code == 404
    assert client.get(f"{base}/overrides").status_code == 404
    assert client.get(f"{base}/overrides/{override.public_id}").status_code == 404
    assert client.post(f"{base}/overrides", {"user": "alice", "start": "2026-05-01T10:00:00Z",
                                             "end": "2026-05-01T11:00:00Z"}, format="json").status_code == 404
    assert client.patch(base, {"name": "mine"}, format="json").status_code == 404
    assert client.patch(f"{base}/overrides/{override.public_id}", {"user": "alice"}, format="json").status_code == 404
    assert client.delete(f"{base}/overrides/{override.public_id}").status_code == 404
    assert client.delete(base).status_code == 404
    assert OnCallSchedule.objects.filter(pk=theirs.pk, name=theirs.name).exists()
    assert ScheduleOverride.objects.filter(pk=override.pk).exists()


def test_other_orgs_token_gets_404(api_client, org, owner, other_org):
    schedule = OnCallScheduleFactory(organization=org)
    client = api_client(token=_issue("globex", "config"))
    assert client.get(f"/api/v1/schedules/{schedule.public_id}/oncall").status_code == 404
    assert client.delete(f"/api/v1/schedules/{schedule.public_id}").status_code == 404


def test_an_override_is_only_found_through_its_own_schedule(api_client, org, owner):
    mine, other = OnCallScheduleFactory(organization=org), OnCallScheduleFactory(organization=org)
    override = ScheduleOverrideFactory(schedule=other, user=owner)
    client = api_client(user=owner)
    assert client.delete(f"/api/v1/schedules/{mine.public_id}/overrides/{override.public_id}").status_code == 404
    assert ScheduleOverride.objects.filter(pk=override.pk).exists()


def test_listing_schedules_does_not_query_per_schedule(api_client, org, owner, editor,
                                                       django_assert_max_num_queries):
    client = api_client(user=owner)
    client.get("/api/v1/schedules")  # warm the session and membership lookups
    for index in range(6):
        schedule = OnCallScheduleFactory(organization=org, name=f"s{index}")
        ScheduleLayerFactory(schedule=schedule, priority=0, users=[owner, editor])
        ScheduleLayerFactory(schedule=schedule, priority=1, users=[editor])
    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/schedules")
    assert [len(s["layers"]) for s in response.json()["results"]] == [2] * 6


def test_oncall_default_is_now(api_client, org, owner):
    schedule = OnCallScheduleFactory(organization=org, time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, users=[owner], start_date=dt.date(2020, 1, 1))
    response = api_client(user=owner).get(f"/api/v1/schedules/{schedule.public_id}/oncall").json()
    assert response["users"] == ["alice"]
    at = dt.datetime.fromisoformat(response["at"])
    assert abs(at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
