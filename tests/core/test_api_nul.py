"""A NUL character (U+0000) anywhere in a JSON body of the API is a 400 naming where it is, never a 500:
PostgreSQL's text and jsonb refuse it, and JSON-typed fields (matchers, tags, labels, widgets) would carry
it to the database untouched. Each case below was a 500 before ``apps.core.api.parsers``, or is a
JSON-typed field that could become one."""

from __future__ import annotations

from typing import Any

import pytest

from apps.alerts.models import AlertRule, MaintenanceWindow, Silence
from apps.core.api.parsers import nul_path

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
RULE = {"name": "r", "kind": "threshold", "metric": "cpu", "reducer": "avg", "window": 60, "comparator": ">",
        "critical": 1, "for": 0}
FUTURE = {"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}


@pytest.mark.parametrize(("path", "body", "where"), [
    ("/api/v1/silences", {"matchers": [{"name": "host", "op": "=", "value": NUL}], "comment": "c", **FUTURE},
     "matchers[0].value"),
    ("/api/v1/rules", {**RULE, "host_tags": {NUL: "v"}}, "host_tags (a key)"),
    ("/api/v1/rules", {**RULE, "alert_labels": {"team": NUL}}, "alert_labels.team"),
    ("/api/v1/maintenance-windows", {"name": "m", **FUTURE, "host_tags": {NUL: "v"}}, "host_tags (a key)"),
    ("/api/v1/escalation-group-routes", {"name": "r", "matchers": {"team": NUL}}, "matchers.team"),
    ("/api/v1/dashboards", {"name": "d", "widgets": [{"title": NUL, "metric": "cpu"}]}, "widgets[0].title"),
    ("/api/v1/channels", {"name": NUL, "kind": "webhook", "url": "http://example.com/h"}, "name"),
])
def test_a_nul_anywhere_in_a_json_body_is_a_400_naming_where(api_client: Any, owner: Any, path: str,
                                                              body: dict[str, Any], where: str) -> None:
    response = api_client(user=owner).post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == f"{where}: text may not contain the NUL character (U+0000)."
    assert not (AlertRule.objects.filter(name="r").exists() or Silence.objects.exists()
                or MaintenanceWindow.objects.exists())


def test_the_same_bodies_without_the_nul_are_accepted(api_client: Any, owner: Any) -> None:
    client = api_client(user=owner)
    assert client.post("/api/v1/rules", {**RULE, "host_tags": {"role": "db"}}, format="json").status_code == 201
    silence = {"matchers": [{"name": "host", "op": "=", "value": "web-1"}], "comment": "c", **FUTURE}
    assert client.post("/api/v1/silences", silence, format="json").status_code == 201


@pytest.mark.parametrize(("value", "where"), [
    ({"a": [1, {"b": "x\x00"}]}, "a[1].b"), (["ok", "\x00"], "[1]"), ("\x00", ""), ({"k\x00": 1}, "a key"),
    ({"a": {"k\x00": 1}}, "a (a key)"), ({"a": [1.5, None, True, "fine"]}, None),
])
def test_nul_path(value: Any, where: str | None) -> None:
    assert nul_path(value) == where
