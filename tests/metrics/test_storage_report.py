"""``manage.py storage_report`` and the admin's storage page on known data: every tier's rows, bytes (checked
against ``pg_total_relation_size`` of each partition, an independent sum), raw values represented, bytes per
value, compression ratio and time range; the page for superusers only."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from apps.metrics import storage
from apps.metrics.rollups import compressed as rollup_compressed
from apps.metrics.rollups import jobs
from apps.metrics.rollups.models import RollupState
from apps.metrics.rollups.tiers import TIERS
from apps.metrics.storage import compressed
from apps.metrics.storage.report import build_report
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import BASE, NOW, write
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db

TABLES = [storage.TABLE, compressed.COMPRESSED_TABLE, *(t.table for t in TIERS),
          *(rollup_compressed.table(t) for t in TIERS), "logs_entry", "logs_event"]
OLD_DAY = (NOW - dt.timedelta(days=3)).date()
OLD_LO = dt.datetime.combine(OLD_DAY, dt.time(), tzinfo=dt.UTC)
TEN_S = dt.timedelta(seconds=10)


def _total_bytes(table: str) -> int:
    """Independently of the report: pg_total_relation_size of the table or of each of its partitions."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s::regclass)",
                       [table])
        total = int(cursor.fetchone()[0])
        if not total:
            cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
            total = int(cursor.fetchone()[0])
    return total


@pytest.fixture
def known_data(org: Any) -> dict[str, Any]:
    """Two series x two hours at 10 s as rows and one series x one hour of a day three days back, all rolled
    up (1,800 raw values in every tier), then that day compressed; three log lines and one event."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)}")
    RollupState.objects.all().delete()
    a, b = SeriesFactory(organization=org), SeriesFactory(organization=org)
    for series in (a, b):
        write(series.id, [(BASE + i * TEN_S, float(i % 7)) for i in range(720)])
    storage.ensure_partitions(days_ahead=0, today=OLD_DAY + dt.timedelta(days=1))
    write(a.id, [(OLD_LO + i * TEN_S, float(i)) for i in range(360)])
    jobs.run_rollups(now=NOW)
    with connection.cursor() as cursor:
        compressed.compress_partition(cursor, OLD_DAY)
        for i in range(3):
            cursor.execute("INSERT INTO logs_entry (time, organization_id, message) VALUES (%s, %s, 'x')",
                           [NOW - dt.timedelta(minutes=i), org.pk])
        cursor.execute("INSERT INTO logs_event (time, organization_id, kind) VALUES (%s, %s, 'deploy')", [NOW, org.pk])
    return {"series": [a, b]}


def _cells(output: str) -> dict[str, list[str]]:
    """Output rows by tier label; cells are separated by two or more spaces."""
    rows = {}
    for line in output.splitlines()[3:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 11:
            rows[cells[0]] = cells
    return rows


def test_storage_report_command_prints_every_tier_with_catalogue_sizes(known_data: Any) -> None:
    out = io.StringIO()
    call_command("storage_report", stdout=out)
    text = out.getvalue()
    assert text.startswith("storage backend: partitioned\n")
    rows = _cells(text)
    assert list(rows) == ["raw rows", "raw compressed chunks", "1m", "1m compressed chunks", "5m",
                          "5m compressed chunks", "1h", "1h compressed chunks", "1d", "1d compressed chunks",
                          "logs", "events"]

    raw_bytes = _total_bytes(storage.TABLE)
    raw = rows["raw rows"]
    assert raw[1:3] == ["metrics_sample", "1,440"]
    assert raw[4] == f"{raw_bytes:,}"
    assert raw[7] == f"{raw_bytes / 1440:,.3f}"
    assert raw[8] == "1.0x"
    assert raw[9:] == [BASE.strftime("%Y-%m-%d %H:%M:%S"), (BASE + 719 * TEN_S).strftime("%Y-%m-%d %H:%M:%S")]

    chunk_bytes = _total_bytes(compressed.COMPRESSED_TABLE)
    chunks = rows["raw compressed chunks"]
    assert chunks[2:5] == ["1", "1", f"{chunk_bytes:,}"]  # one chunk row: one series, one day
    assert chunks[7] == f"{chunk_bytes / 360:,.3f}"
    assert chunks[8] == f"{(raw_bytes / 1440) / (chunk_bytes / 360):,.1f}x"
    assert chunks[9:] == [OLD_LO.strftime("%Y-%m-%d %H:%M:%S"), (OLD_LO + 359 * TEN_S).strftime("%Y-%m-%d %H:%M:%S")]

    one_minute = rows["1m"]
    assert one_minute[2] == "300"  # 2 series x 120 buckets + 60 of the old day: 1,800 raw values
    assert one_minute[4] == f"{_total_bytes('metrics_rollup_1m'):,}"
    assert one_minute[7] == f"{_total_bytes('metrics_rollup_1m') / 1800:,.3f}"
    assert rows["5m"][2] == "60"
    assert rows["1h"][2] == "5"
    assert rows["logs"][2:4] == ["3", rows["logs"][3]] and rows["logs"][4] == f"{_total_bytes('logs_entry'):,}"
    assert rows["events"][2] == "1"
    assert text.rstrip().endswith(f"total: {sum(_total_bytes(t) for t in TABLES):,} bytes")


def test_report_values_and_ratio_come_from_the_data(known_data: Any) -> None:
    report = build_report()
    lines = {line.label: line for line in report.lines}
    assert lines["raw rows"].values == 1440
    assert lines["raw compressed chunks"].values == 360
    assert [lines[t].values for t in ("1m", "5m", "1h")] == [1800, 1800, 1800]
    assert lines["logs"].values == 3
    # Against the raw rows' bytes per value (at this size mostly the pages of near-empty partitions, so only
    # the arithmetic is checked here; bench/storage.py measures the ratio on real volumes).
    raw_per_value = _total_bytes(storage.TABLE) / 1440
    chunk_per_value = _total_bytes(compressed.COMPRESSED_TABLE) / 360
    assert report.compression_ratio(lines["raw compressed chunks"]) == pytest.approx(raw_per_value / chunk_per_value)


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_storage_page_shows_the_report_to_a_superuser_and_is_linked_from_the_index(
        known_data: Any, superuser_client: Client) -> None:
    index = superuser_client.get("/admin/")
    assert index.status_code == 200
    assert 'href="/admin/storage/"' in index.content.decode()
    page = superuser_client.get("/admin/storage/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<td>metrics_sample</td>" in body
    assert "<td>1,440</td>" in body and "<td>metrics_sample_compressed</td>" in body
    assert superuser_client.post("/admin/storage/").status_code == 405  # read-only


def test_admin_storage_page_is_refused_to_staff_without_superuser_rights_and_hidden_from_anonymous() -> None:
    staff = Client()
    staff.force_login(UserFactory(username="staffer", is_staff=True, is_superuser=False))
    assert staff.get("/admin/storage/").status_code == 403
    assert 'href="/admin/storage/"' not in staff.get("/admin/").content.decode()
    anonymous = Client().get("/admin/storage/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
