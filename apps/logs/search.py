"""The one read side of log entries and events: filters, full text, newest first, keyset cursor,
highlights. The API (apps/logs/api/views.py), the page and the host detail panel all call it.

Full text uses ``websearch_to_tsquery('simple', q)`` against the generated ``search`` column (GIN index):
words, ``"quoted phrases"``, ``or`` and ``-excluded`` words, as in a web search box. The cursor is the
(time, id) of the last row shown, so pages stay stable while new entries arrive."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from apps.logs import es, levels, retention

logger = logging.getLogger(__name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# ts_headline's markers; replaced by <mark> after HTML escaping, so a message can never inject markup.
_START, _STOP = "\x02", "\x03"
_HEADLINE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"


class SearchError(ValueError):
    """A bad parameter; answered 400 naming it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(slots=True)
class LogQuery:
    """What to find. Empty lists mean "any"."""

    organization_id: int
    start: dt.datetime
    end: dt.datetime
    q: str = ""
    hosts: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    programs: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    host_ids: list[int] = field(default_factory=list)
    cursor: tuple[dt.datetime, int] | None = None
    limit: int = DEFAULT_LIMIT


def encode_cursor(time: dt.datetime, row_id: int) -> str:
    micros = int(time.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[dt.datetime, int]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        micros, row_id = (int(part) for part in text.split(":"))
        return dt.datetime.fromtimestamp(micros / 1_000_000, tz=dt.UTC), row_id
    except (ValueError, UnicodeDecodeError, OverflowError, OSError):
        raise SearchError("cursor", "cursor is not one this API returned") from None


def parse_levels(raw: str | None) -> list[str]:
    try:
        return levels.parse_filter(raw or "")
    except ValueError as exc:
        raise SearchError("level", str(exc)) from None


def parse_limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise SearchError("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def highlight(text: str) -> str:
    """ts_headline output -> HTML: everything escaped, the markers turned into <mark>."""
    escaped = html.escape(text.replace("\x00", ""))
    return escaped.replace(_START, "<mark>").replace(_STOP, "</mark>")


def _where(query: LogQuery, kind: str) -> tuple[list[str], list[Any]]:
    since = max(query.start, retention.visible_since(query.organization_id, kind))
    clauses = ["organization_id = %s", "time >= %s", "time < %s"]
    params: list[Any] = [query.organization_id, since, query.end]
    # Only the columns the table has: a filter of the other table is the caller's to refuse.
    table_filters = ("service", "program") if kind == "logs" else ("kind",)
    for column, values in (("host", query.hosts), ("level", query.levels), ("service", query.services),
                           ("program", query.programs), ("kind", query.kinds), ("host_id", query.host_ids)):
        if not values or (column not in table_filters and column not in ("host", "level", "host_id")):
            continue
        if len(values) == 1:
            # "= value", not "= ANY(array)": only then does the (organization, host, time) index return
            # rows in time order (measured: 15,000 rows sorted on disk instead of streamed).
            clauses.append(f"{column} = %s")
            params.append(values[0])
        else:
            clauses.append(f"{column} = ANY(%s)")
            params.append(list(values))
    if query.cursor is not None:
        clauses.append("(time, id) < (%s, %s)")
        params.extend(query.cursor)
    return clauses, params


_ENTRY_FIELDS = ("time", "id", "host", "service", "level", "program", "message", "request_id", "trace_id",
                 "exception_type", "exception_message", "exception_stack", "context")
_EVENT_FIELDS = ("time", "id", "host", "kind", "level", "title", "message", "source", "context")


#: How many of the newest rows of an equality filter (host, service, program) a full-text search reads
#: before it falls back to the index plan; see ``_filter_first``.
FILTER_FIRST_ROWS = 20_000


Page = tuple[list[dict[str, Any]], str | None]


def _from_elasticsearch(name: str, query: LogQuery, fallback: Callable[[LogQuery], Page]) -> Page:
    """Elasticsearch answers when configured (apps/logs/es_search.py); on any of its errors, PostgreSQL."""
    if not (es.enabled() and getattr(settings, "FIBERSTACK_LOGS_ES_SEARCH", True)):
        return fallback(query)
    # Imported here: es_search builds on this module's LogQuery, cursor and highlight helpers.
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from apps.logs import es_search

    try:
        return getattr(es_search, name)(query)
    except (ApiError, TransportError, KeyError, TypeError, ValueError) as exc:
        logger.warning("logs search: Elasticsearch failed (%s: %s); answered from PostgreSQL",
                       type(exc).__name__, exc)
        return fallback(query)


def search_entries(query: LogQuery) -> Page:
    """Matching entries, newest first, from Elasticsearch when configured, else (or when it fails) from
    PostgreSQL."""
    return _from_elasticsearch("search_entries", query, pg_search_entries)


def search_events(query: LogQuery) -> Page:
    """Matching events, newest first, from Elasticsearch when configured, else from PostgreSQL."""
    return _from_elasticsearch("search_events", query, pg_search_events)


def pg_search_entries(query: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Matching entries, newest first, and the cursor of the next page (None on the last page). With
    ``q`` each row has ``highlight``: the message as HTML with the matches in <mark>."""
    q = query.q.strip()
    rows = _filter_first(query) if q and (query.hosts or query.services or query.programs) else None
    if rows is None:
        clauses, params = _where(query, "logs")
        if q:
            clauses.append("search @@ websearch_to_tsquery('simple', %s)")
            params.append(query.q)
        inner = (f"SELECT {', '.join(_ENTRY_FIELDS)} FROM logs_entry WHERE {' AND '.join(clauses)} "  # noqa: S608
                 "ORDER BY time DESC, id DESC LIMIT %s")
        rows = _fetch(inner, [*params, query.limit + 1], query)
    results = []
    for row in rows[: query.limit]:
        entry = dict(zip(_ENTRY_FIELDS, row, strict=False))
        if q:
            entry["highlight"] = highlight(row[len(_ENTRY_FIELDS)])
        results.append(_public(entry))
    return results, _next(rows, query.limit)


def _filter_first(query: LogQuery) -> list[tuple[Any, ...]] | None:
    """Full text within one host (service, program): match against that filter's newest rows, read in
    time order through the (organization, host, time) index and streamed, so the scan stops at the first
    page of matches (at most FILTER_FIRST_ROWS rows). PostgreSQL would rather gather every row holding
    the words through the GIN index and sort them -- 0.9 s for a common phrase among 10 M entries
    (docs/logs.md). A full page is exact (no newer match can lie outside the newest rows); a short one
    may not be, so it gives None and the caller runs the plain query."""
    clauses, params = _where(query, "logs")
    fields = ", ".join(_ENTRY_FIELDS)
    inner = (
        f"SELECT {fields} FROM (SELECT {fields}, search FROM logs_entry WHERE {' AND '.join(clauses)} "  # noqa: S608
        "ORDER BY time DESC, id DESC LIMIT %s) AS candidates "
        "WHERE search @@ websearch_to_tsquery('simple', %s) ORDER BY time DESC, id DESC LIMIT %s"
    )
    rows = _fetch(inner, [*params, FILTER_FIRST_ROWS, query.q, query.limit + 1], query)
    return rows if len(rows) > query.limit else None


def _fetch(inner: str, params: list[Any], query: LogQuery) -> list[tuple[Any, ...]]:
    """Run ``inner`` (newest first, limited), adding the headline of each row when there is a ``q``:
    computed outside the subquery, so only for the rows shown."""
    columns = ", ".join(f"page.{name}" for name in _ENTRY_FIELDS)
    outer_extra = ""
    if query.q.strip():
        outer_extra = ", ts_headline('simple', page.message, websearch_to_tsquery('simple', %s), %s)"
        params = [query.q, _HEADLINE_OPTIONS, *params]
    sql = f"SELECT {columns}{outer_extra} FROM ({inner}) AS page ORDER BY time DESC, id DESC"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def pg_search_events(query: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Matching events, newest first, and the next page's cursor."""
    clauses, params = _where(query, "events")
    sql = (f"SELECT {', '.join(_EVENT_FIELDS)} FROM logs_event WHERE {' AND '.join(clauses)} "  # noqa: S608
           "ORDER BY time DESC, id DESC LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, query.limit + 1])
        rows = cursor.fetchall()
    results = [_public(dict(zip(_EVENT_FIELDS, row, strict=True))) for row in rows[: query.limit]]
    return results, _next(rows, query.limit)


def _next(rows: list[tuple[Any, ...]], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last[0], last[1])


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: ISO time, the id as a string (entries are addressed by time and id), context decoded."""
    row["id"] = str(row["id"])
    row["time"] = row["time"].astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(row.get("context"), str):
        row["context"] = json.loads(row["context"])
    return row
