"""Logs run as the application's database role, which owns nothing (docs/database-roles.md): ingest
creates a missing day's partition through the owner's functions, search reads, and retention drops
partitions and trims rows -- all with exactly the app role's privileges."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.logs import retention, storage
from apps.metrics.storage import ddl
from tests.core.test_database_roles import app_role, django_as_app_role, granted  # noqa: F401 (fixtures)
from tests.logs.conftest import post_logs, search
from tests.logs.test_storage import day_partition, partitions

pytestmark = pytest.mark.django_db(transaction=True)


def _owner_of(relation: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)", [relation])
        row = cursor.fetchone()
    return row[0] if row else ""


def test_ingest_search_and_retention_as_the_app_role(write_token: str, read_token: str, granted: str) -> None:  # noqa: F811
    today = day_partition("logs_entry", 0)
    old = timezone.now() - dt.timedelta(days=60)
    old_name = f"logs_entry_p{old:%Y%m%d}"
    with connection.cursor() as cursor:  # as the owner: today's partition gone, a 60-day-old one present
        ddl.drop_partition(cursor, "logs_entry", today)
        start = old.replace(hour=0, minute=0, second=0, microsecond=0)
        ddl.create_partition(cursor, "logs_entry", old_name, start, start + dt.timedelta(days=1))
    storage._known_days.clear()
    client = Client()
    with django_as_app_role():
        assert post_logs(client, write_token, [{"message": "as the app role"}]).status_code == 200
        assert search(client, read_token, q="role").json()["results"][0]["message"] == "as the app role"
        report = retention.apply_retention()
    assert today in partitions("logs_entry") and _owner_of(today) == connection.settings_dict["USER"]
    assert old_name in report["logs"]["dropped"] and old_name not in partitions("logs_entry")
    storage._known_days.clear()
