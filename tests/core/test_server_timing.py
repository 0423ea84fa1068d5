"""``Server-Timing`` (apps.core.timing): on when FIBERSTACK_SERVER_TIMING is, with Django's time, the SQL time
and the statement count of the request; absent otherwise, so production does not tell outsiders what is slow."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _get(user: Any, org: Any) -> Any:
    client = Client()  # a new client builds its middleware chain under the current settings
    client.force_login(user)
    return client.get(reverse("hosts:list", args=[org.slug]))


def test_no_server_timing_by_default(member_ro: Any, org: Any) -> None:
    assert "Server-Timing" not in _get(member_ro, org).headers


@override_settings(FIBERSTACK_SERVER_TIMING=True)
def test_server_timing_names_app_time_sql_time_and_statements(member_ro: Any, org: Any) -> None:
    header = _get(member_ro, org).headers["Server-Timing"]
    match = re.fullmatch(r'app;dur=([0-9.]+), db;dur=([0-9.]+);desc="(\d+) queries"', header)
    assert match, header
    app, db, statements = float(match[1]), float(match[2]), int(match[3])
    assert 0 < db <= app
    assert statements >= 3  # session, user, membership at least


@override_settings(FIBERSTACK_SERVER_TIMING=True)
def test_server_timing_is_on_redirects_and_errors_too(client: Client) -> None:
    assert "app;dur=" in client.get("/no-such-page/").headers["Server-Timing"]
