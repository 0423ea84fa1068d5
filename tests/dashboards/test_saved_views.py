"""Saved dashboard pages: every page for each role, refused POSTs that write nothing, create / edit /
reorder / remove through the forms, admin delete, other organizations 404, per-field messages (a bad
matcher checked by the metrics read parser), the share link's ?range=, and the audit rows."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.dashboards.models import SavedDashboard
from tests.dashboards.saved_factories import SavedDashboardFactory, widget

pytestmark = pytest.mark.django_db

ROLES = [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(name: str, org: Any, dashboard: Any = None) -> str:
    args = [org.slug] + ([dashboard.public_id] if dashboard is not None else [])
    return reverse(f"dashboards:saved:{name}", args=args)


def _post_data(name: str, widgets: list[dict[str, Any]], **extra: str) -> dict[str, str]:
    """The edit form as the browser posts it: one form per widget, ORDER = the position shown."""
    data = {"name": name, "description": "", "widgets-TOTAL_FORMS": str(len(widgets)),
            "widgets-INITIAL_FORMS": "0", "widgets-MIN_NUM_FORMS": "0", "widgets-MAX_NUM_FORMS": "1000"}
    for i, w in enumerate(widgets):
        for key, value in w.items():
            if key == "DELETE":
                if value:
                    data[f"widgets-{i}-DELETE"] = "on"
                continue
            data[f"widgets-{i}-{key}"] = str(value)
        data.setdefault(f"widgets-{i}-ORDER", str(i + 1))
    data.update(extra)
    return data


@pytest.fixture
def dashboard(org: Any) -> SavedDashboard:
    return SavedDashboardFactory(organization=org, name="Web tier")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_for_each_role(role: str, user_with_role: Any, org: Any, dashboard: SavedDashboard) -> None:
    client = _client(user_with_role(role))
    listing = client.get(_url("list", org))
    detail = client.get(_url("detail", org, dashboard))
    assert listing.status_code == detail.status_code == 200
    assert "Web tier" in listing.content.decode()
    can_edit = role != Role.VIEWER
    can_delete = role in (Role.ADMIN, Role.OWNER)
    assert ('data-action="create-dashboard"' in listing.content.decode()) is can_edit
    assert ('data-action="edit-dashboard"' in detail.content.decode()) is can_edit
    assert ('data-action="delete-dashboard"' in detail.content.decode()) is can_delete
    assert client.get(_url("create", org)).status_code == (200 if can_edit else 403)
    assert client.get(_url("edit", org, dashboard)).status_code == (200 if can_edit else 403)


def test_detail_draws_each_widget_with_the_chart_markup_and_read_api_query(
        member_ro: Any, org: Any) -> None:
    board = SavedDashboardFactory(organization=org, widgets=[
        widget(title="Prod CPU", labels='env="prod",instance=~"web-.*"', agg="p95", range="6h", width=4)])
    body = _client(member_ro).get(_url("detail", org, board)).content.decode()
    assert 'data-chart-group' in body and 'data-agg="p95"' in body and "Prod CPU" in body
    assert 'grid-column:span 4' in body
    assert 'data-range="21600" class="active"' in body  # the widget's own range
    query = body.split('data-query="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert parse_qs(query) == {"org": ["acme"], "name": ["cpu_usage_active"],
                               "labels": ['env="prod",instance=~"web-.*"']}
    assert "js/charts.js" in body


def test_range_in_the_query_string_overrides_every_widget_so_a_link_reproduces_the_view(
        member_ro: Any, org: Any, dashboard: SavedDashboard) -> None:
    client = _client(member_ro)
    body = client.get(_url("detail", org, dashboard) + "?range=7d").content.decode()
    assert body.count('data-range="604800" class="active"') == 2
    assert 'data-range-link="7d" class="active"' in body
    # An unknown range was ignored (each widget's own range shown as if the link's had applied): a 400 now.
    refused = client.get(_url("detail", org, dashboard) + "?range=forever", headers={"accept": "text/html"})
    assert refused.status_code == 400
    assert refused.content.decode() == "range: must be one of 1h, 6h, 24h, 7d, 30d, not 'forever'."


def test_viewer_posts_are_refused_and_write_nothing(member_ro: Any, org: Any, dashboard: SavedDashboard) -> None:
    client = _client(member_ro)
    before = AuditEvent.objects.count()
    assert client.post(_url("create", org), _post_data("Mine", [widget()])).status_code == 403
    assert client.post(_url("edit", org, dashboard), _post_data("Renamed", [])).status_code == 403
    assert client.post(_url("delete", org, dashboard)).status_code == 403
    assert list(SavedDashboard.objects.values_list("name", flat=True)) == ["Web tier"]
    dashboard.refresh_from_db()
    assert len(dashboard.widgets) == 2
    assert AuditEvent.objects.count() == before


def test_editor_cannot_delete(editor: Any, org: Any, dashboard: SavedDashboard) -> None:
    assert _client(editor).post(_url("delete", org, dashboard)).status_code == 403
    assert SavedDashboard.objects.filter(pk=dashboard.pk).exists()


def test_editor_creates_a_dashboard_and_it_is_audited(editor: Any, org: Any) -> None:
    response = _client(editor).post(_url("create", org), _post_data("Databases", [
        widget(title="Connections", metric="pg_stat_activity_count", labels='datname="app"', agg="max")]))
    board = SavedDashboard.objects.get(organization=org, name="Databases")
    assert response.status_code == 302 and response["Location"] == _url("detail", org, board)
    assert board.widgets == [widget(title="Connections", metric="pg_stat_activity_count", labels='datname="app"',
                                    agg="max")]
    event = AuditEvent.objects.get(action="dashboard.created")
    assert event.organization_id == org.pk and event.object_id == str(board.public_id)
    assert event.actor_user_id == editor.pk


def test_editor_edits_reorders_adds_and_removes_widgets(editor: Any, org: Any, dashboard: SavedDashboard) -> None:
    cpu, mem = dashboard.widgets
    response = _client(editor).post(_url("edit", org, dashboard), _post_data("Web tier", [
        {**cpu, "ORDER": "2"},
        {**mem, "ORDER": "1"},
        {**widget(metric="gone"), "ORDER": "3", "DELETE": True},
        {**widget(metric="system_load1", range="24h"), "ORDER": "3"},
    ]))
    assert response.status_code == 302
    dashboard.refresh_from_db()
    assert [w["metric"] for w in dashboard.widgets] == ["mem_used_percent", "cpu_usage_active", "system_load1"]
    event = AuditEvent.objects.get(action="dashboard.updated")
    assert event.object_id == str(dashboard.public_id)


def test_invalid_widget_gets_a_message_naming_the_field_and_nothing_is_saved(
        editor: Any, org: Any, dashboard: SavedDashboard) -> None:
    before = dashboard.widgets
    response = _client(editor).post(_url("edit", org, dashboard), _post_data("Web tier", [
        widget(labels='env="prod",,'), widget(metric="9bad", agg="median", width=13)]))
    assert response.status_code == 400
    body = response.content.decode()
    labels_field = body.split('data-field="labels"', 1)[1].split("</div>", 1)[0]
    assert "has-error" in body and "cannot parse label matcher" in labels_field  # parse_matchers' message
    second = body.split("<fieldset class=\"widget-form\"")[2]  # the second widget's form
    assert 'name="widgets-1-metric"' in second
    for field in ("metric", "agg", "width"):
        block = second.split(f'data-field="{field}"', 1)[1].split("</div>", 1)[0]
        assert 'class="errorlist"' in block, field
    dashboard.refresh_from_db()
    assert dashboard.widgets == before
    assert not AuditEvent.objects.filter(action="dashboard.updated").exists()


def test_duplicate_name_is_a_message_on_the_name_field(editor: Any, org: Any, dashboard: SavedDashboard) -> None:
    response = _client(editor).post(_url("create", org), _post_data("Web tier", [widget()]))
    assert response.status_code == 400
    block = response.content.decode().split('data-field="name"', 1)[1].split("</div>", 1)[0]
    assert "already exists" in block
    assert SavedDashboard.objects.count() == 1


def test_admin_deletes_and_the_share_link_is_gone(admin_member: Any, org: Any, dashboard: SavedDashboard) -> None:
    client = _client(admin_member)
    response = client.post(_url("delete", org, dashboard))
    assert response.status_code == 302 and response["Location"] == _url("list", org)
    assert not SavedDashboard.objects.filter(pk=dashboard.pk).exists()
    assert client.get(_url("detail", org, dashboard)).status_code == 404
    event = AuditEvent.objects.get(action="dashboard.deleted")
    assert event.object_id == str(dashboard.public_id) and event.organization_id == org.pk


def test_other_org_gets_404(other_org_user: Any, org: Any, other_org: Any, dashboard: SavedDashboard) -> None:
    client = _client(other_org_user)
    # Their own organization's URL with our dashboard's id, and our organization's URLs: 404 everywhere.
    for slug_org in (other_org, org):
        assert client.get(_url("detail", slug_org, dashboard)).status_code == 404
        assert client.get(_url("edit", slug_org, dashboard)).status_code == 404
        assert client.post(_url("edit", slug_org, dashboard), _post_data("Stolen", [])).status_code == 404
        assert client.post(_url("delete", slug_org, dashboard)).status_code == 404
    assert client.get(_url("list", org)).status_code == 404
    dashboard.refresh_from_db()
    assert dashboard.name == "Web tier"


def test_anonymous_is_sent_to_sign_in(client: Client, org: Any, dashboard: SavedDashboard) -> None:
    response = client.get(_url("detail", org, dashboard))
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_huge_form_count_is_refused_without_building_the_forms(editor: Any, org: Any) -> None:
    """``widgets-TOTAL_FORMS=10**20`` built and rendered back MAX_WIDGETS + 1000 empty forms."""
    data = _post_data("Big", [widget()], **{"widgets-TOTAL_FORMS": str(10**20)})
    response = _client(editor).post(_url("create", org), data)
    assert response.status_code == 400
    assert len(response.context["formset"].forms) <= 50
    assert "at most 50" in " ".join(response.context["formset"].non_form_errors())
    assert not SavedDashboard.objects.exists()
