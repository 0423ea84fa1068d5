"""The slow write path for samples whose (series_id, time) is already stored or repeated in the request:
a retried batch (the reply was lost after COMMIT), an agent re-sending its buffer, or a body that carries
the same point twice. Same series and timestamp is one sample, and the later write wins (InfluxDB's rule).

Rows are binary-COPYed into a session-private staging table, then moved into the raw table by one
``INSERT ... SELECT DISTINCT ON (series_id, time) ... ON CONFLICT (series_id, time) DO UPDATE``. The staging
table's identity column records each row's position in the request, so of two rows with the same key the
later one in the body is the one inserted (``ON CONFLICT DO UPDATE`` refuses to touch a row twice in one
statement, so in-request duplicates must be settled before it).

Measured on a 50,000-row request (bench/retry.py, bench/README.md "Retried batches count once"): 3.8x
the PostgreSQL CPU of a plain COPY for new rows, 2.5x for an identical retry and 4.7x for a retry with
changed values, which is why ``copy_samples`` only comes here after its plain COPY hits the unique index."""

from __future__ import annotations

from typing import Any

from apps.metrics.storage.common import TABLE

STAGE = "fs_sample_stage"

# The statement empties the staging table as it reads it, so a second merge in the same transaction (or a
# pooled connection's next request) never sees these rows again; a failed statement rolls back with the
# transaction. WHERE ... IS DISTINCT FROM: an identical retry locks the stored rows but writes no new row
# versions (no index entries, no dead tuples to vacuum).
MERGE_SQL = f"""
WITH staged AS (DELETE FROM {STAGE} RETURNING time, series_id, value, seq)
INSERT INTO {TABLE} AS s (time, series_id, value)
SELECT DISTINCT ON (series_id, time) time, series_id, value FROM staged
ORDER BY series_id, time, seq DESC
ON CONFLICT (series_id, time) DO UPDATE SET value = EXCLUDED.value
WHERE s.value IS DISTINCT FROM EXCLUDED.value
"""  # noqa: S608 - names are ours


def create_stage(cursor: Any) -> None:
    """The staging table, once per database session (temporary tables are private to it, so concurrent
    requests never mix rows). Not ``ON COMMIT DROP``: re-creating it per request would churn the catalogue."""
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (time timestamptz NOT NULL, series_id integer NOT NULL, "
        "value double precision NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY)"
    )


def merge_stage(cursor: Any) -> None:
    """Move every staged row into the raw table: one row per (series_id, time), the last staged wins."""
    cursor.execute(MERGE_SQL)


def merge_copy(cursor: Any, data: bytes) -> None:
    """Upsert ``data`` (the binary COPY stream of ``common.COPY_SQL``'s columns, rows in request order or
    stably sorted) in the caller's transaction."""
    create_stage(cursor)
    with cursor.copy(f"COPY {STAGE} (time, series_id, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(data)
    merge_stage(cursor)
