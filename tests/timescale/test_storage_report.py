"""``manage.py storage_report`` on a real TimescaleDB: raw row chunks and natively compressed chunks as two
lines, sizes from ``chunks_detailed_size`` and ``chunk_compression_stats``, rollup hypertables from
``hypertable_detailed_size``."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from django.core.management import call_command

from apps.metrics import compression, storage
from apps.metrics.storage.report import build_report
from tests.timescale.samples import every_minute, fetch, insert_samples, scalar

pytestmark = pytest.mark.xdist_group("timescale")

DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_storage_report_splits_row_and_compressed_chunks_with_timescale_sizes(ts: Any) -> None:
    insert_samples(ts, every_minute(START, START + 2 * DAY, [1, 2]))  # 5,760 values in two chunks, compressed
    insert_samples(ts, every_minute(START + 3 * DAY, START + 3 * DAY + dt.timedelta(hours=1), [1, 2]))  # 120 rows
    compression.compress_raw(now=START + 3 * DAY, older_than=dt.timedelta(0))

    report = build_report()
    assert report.backend == "timescaledb"
    lines = {line.label: line for line in report.lines}
    assert [line.label for line in report.lines][:6] == ["raw rows", "raw compressed chunks", "1m", "5m", "1h", "1d"]

    rows = lines["raw rows"]
    assert (rows.rows, rows.parts, rows.values) == (120, 1, 120)
    assert (rows.oldest, rows.newest) == (START + 3 * DAY, START + 3 * DAY + dt.timedelta(minutes=59))
    row_bytes = scalar(ts, "SELECT sum(d.total_bytes)::bigint FROM chunks_detailed_size(%s) d JOIN "
                           "timescaledb_information.chunks c USING (chunk_schema, chunk_name) "
                           "WHERE NOT c.is_compressed", [storage.TABLE])
    assert rows.size.total == row_bytes

    packed = lines["raw compressed chunks"]
    assert (packed.rows, packed.parts, packed.values) == (5760, 2, 5760)
    assert (packed.oldest, packed.newest) == (START, START + 2 * DAY - dt.timedelta(minutes=1))
    before, after = fetch(ts, "SELECT sum(before_compression_total_bytes)::bigint, "
                              "sum(after_compression_total_bytes)::bigint FROM chunk_compression_stats(%s)",
                          [storage.TABLE])[0]
    assert (packed.size.total, packed.before_bytes) == (after, before)
    assert report.compression_ratio(packed) == pytest.approx(before / after)
    assert packed.bytes_per_value == pytest.approx(after / 5760)

    hourly = lines["1h"]
    assert hourly.rows == 0
    assert hourly.size.total == scalar(ts, "SELECT total_bytes FROM hypertable_detailed_size('metrics_rollup_1h')")

    out = io.StringIO()
    call_command("storage_report", stdout=out)
    text = out.getvalue()
    assert text.startswith("storage backend: timescaledb\n")
    line = next(row for row in text.splitlines() if row.startswith("raw compressed chunks"))
    assert re.split(r"\s{2,}", line)[1:5] == ["metrics_sample", "5,760", "2", f"{after:,}"]
