"""Turning audit events into output people read: CSV and JSON files of a period, streamed batch by
batch, and the before/after rows shown on the audit page and in the admin."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from apps.audit.filters import iter_batches
from apps.audit.models import AuditEvent

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


# The model fields an export reads, and the public names it writes them under (never internal keys).
EXPORT_FIELDS = {"public_id": "id", "created_at": "created_at", "actor_type": "actor_type", "actor_repr": "actor",
                 "action": "action", "object_type": "object_type", "object_id": "object_id",
                 "object_repr": "object_repr", "changes": "changes", "request_id": "request_id", "ip": "ip",
                 "user_agent": "user_agent"}
COLUMNS = list(EXPORT_FIELDS.values())


def event_record(row: dict[str, Any]) -> dict[str, Any]:
    """One exported event (a `.values()` row) under its public column names."""
    record = {public: row[field] for field, public in EXPORT_FIELDS.items()}
    record["id"] = str(record["id"])
    record["created_at"] = record["created_at"].isoformat()
    return record


def _display(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)


def change_rows(changes: Any) -> list[tuple[str, str | None, str | None]]:
    """`(field, before, after)` as display strings (None: no value). Services store
    `{field: [before, after]}`; any other payload is shown whole in the "after" column, never hidden."""
    if not isinstance(changes, dict):
        return [("", None, _display(changes))] if changes else []
    rows = []
    for field, value in changes.items():
        if isinstance(value, list | tuple) and len(value) == 2:
            rows.append((str(field), _display(value[0]), _display(value[1])))
        else:
            rows.append((str(field), None, _display(value)))
    return rows


def _csv_line(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode()


# Spreadsheets run a cell that starts with one of these as a formula; names in the log (host names,
# token names, user agents) are chosen by users, so a CSV opened in Excel must not execute them (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _chunks(batches: Iterator[list[dict[str, Any]]], fmt: str) -> Iterator[bytes]:
    """The file as a series of byte chunks, one per batch (plus header and trailer)."""
    if fmt == "csv":
        yield _csv_line(COLUMNS)
        for batch in batches:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows([_csv_cell(v) for v in event_record(row).values()] for row in batch)
            yield buffer.getvalue().encode()
        return
    yield b"["
    first = True
    for batch in batches:
        # One dumps per batch: the array's brackets are cut off so batches join into one array.
        body = json.dumps([event_record(row) for row in batch], cls=DjangoJSONEncoder, indent=None)[1:-1]
        yield (("\n" if first else ",\n") + body).encode()
        first = False
    yield b"\n]\n"


def stream_events(queryset: QuerySet[AuditEvent], fmt: str, batch_size: int = 1000) -> Iterator[bytes]:
    """Synchronous stream (WSGI, the test client)."""
    return _chunks(iter_batches(queryset, list(EXPORT_FIELDS), batch_size), fmt)


async def astream_events(queryset: QuerySet[AuditEvent], fmt: str, batch_size: int = 1000) -> AsyncIterator[bytes]:
    """Asynchronous stream for ASGI (daphne): Django would otherwise read a synchronous iterator whole
    into memory before sending it. Each batch runs in the thread that served the view, so it uses the
    request's database connection."""
    chunks = stream_events(queryset, fmt, batch_size)
    step = sync_to_async(next, thread_sensitive=True)
    while (chunk := await step(chunks, None)) is not None:
        yield chunk


def export_filename(slug: str, fmt: str, start: Any, end: Any, today: Any) -> str:
    """`audit-<org>-<from>--<to>.<fmt>`; an open start reads "start", an open end is today."""
    return f"audit-{slug}-{start.isoformat() if start else 'start'}--{(end or today).isoformat()}.{fmt}"
