"""Search served from the Elasticsearch copies (``ELASTICSEARCH_URL`` set and ``FIBERSTACK_LOGS_ES_SEARCH``
on): the same LogQuery in, the same results and cursor out as the PostgreSQL read side (apps/logs/search.py),
which stays the fallback -- any Elasticsearch error (unreachable, timeout, 5xx, a refused query) answers
from PostgreSQL instead, logged, so an outage never fails a search.

The query language is translated: ``q``'s web-search syntax (words, ``"phrases"``, ``or``, ``-excluded``)
becomes a ``simple_query_string`` with AND as default operator; filters are ``term``/``terms`` on keywords;
newest first is a sort on (``time_us``, ``id``) and the API's keyset cursor is ``search_after`` on the
same pair, so pages are stable and exact to the microsecond."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from apps.logs import es, retention
from apps.logs.search import LogQuery, encode_cursor, highlight

_TOKENS = re.compile(r'"[^"]*"|\S+')
_SPECIAL = re.compile(r'([+|\-"*()~\\])')
_START, _STOP = "\x02", "\x03"  # the same markers as ts_headline's; search.highlight turns them into <mark>
_TEXT_FIELDS = ["message", "program", "service", "exception_type", "exception_message"]


def simple_query(q: str) -> str:
    """websearch_to_tsquery's syntax as simple_query_string: ``a or b`` -> ``a | b``, other operators
    escaped so a stray ``*`` or ``(`` is a character, not a syntax error."""
    parts = []
    for token in _TOKENS.findall(q):
        if token.startswith('"'):
            phrase = token.strip('"').strip()
            if phrase:
                parts.append('"' + _SPECIAL.sub(r"\\\1", phrase) + '"')
        elif token.lower() == "or":
            parts.append("|")
        elif token.startswith("-") and len(token) > 1:
            parts.append("-" + _SPECIAL.sub(r"\\\1", token[1:]))
        else:
            parts.append(_SPECIAL.sub(r"\\\1", token))
    return " ".join(parts)


def _filters(query: LogQuery, kind: str) -> list[dict[str, Any]]:
    since = max(query.start, retention.visible_since(query.organization_id, kind))
    clauses: list[dict[str, Any]] = [
        {"term": {"organization_id": query.organization_id}},
        {"range": {"time_us": {"gte": es.micros(since), "lt": es.micros(query.end)}}},
    ]
    fields = [("host", query.hosts), ("level", query.levels), ("host_id", query.host_ids)]
    fields += [("service", query.services), ("program", query.programs)] if kind == "logs" else [("kind", query.kinds)]
    for name, values in fields:
        if values:
            clauses.append({"terms": {name: list(values)}})
    return clauses


def _run(family: es.IndexFamily, query: LogQuery, body: dict[str, Any]) -> list[dict[str, Any]]:
    body.update({"size": query.limit + 1, "track_total_hits": False,
                 "sort": [{"time_us": {"order": "desc"}}, {"id": {"order": "desc"}}]})
    if query.cursor is not None:
        body["search_after"] = [es.micros(query.cursor[0]), query.cursor[1]]
    timeout = float(getattr(settings, "FIBERSTACK_LOGS_ES_SEARCH_TIMEOUT_S", 3))
    response = es.client().options(request_timeout=timeout).search(
        index=family.pattern, allow_no_indices=True, ignore_unavailable=True, **body)
    return list(response["hits"]["hits"])


def _page(hits: list[dict[str, Any]], query: LogQuery, fields: tuple[str, ...]) -> tuple[list[dict], str | None]:
    results = []
    for hit in hits[: query.limit]:
        source = hit["_source"]
        row = {name: source.get(name, "") for name in fields}
        row["id"] = str(source["id"])
        row["time"] = es.from_micros(source["time_us"]).isoformat().replace("+00:00", "Z")
        row["context"] = source.get("context") or {}
        if query.q.strip():
            marked = (hit.get("highlight") or {}).get("message")
            row["highlight"] = highlight(marked[0] if marked else str(source.get("message", "")))
        results.append(row)
    next_cursor = None
    if len(hits) > query.limit:
        last = hits[query.limit - 1]["_source"]
        next_cursor = encode_cursor(es.from_micros(last["time_us"]), int(last["id"]))
    return results, next_cursor


_ENTRY_FIELDS = ("host", "service", "level", "program", "message", "request_id", "trace_id", "exception_type",
                 "exception_message", "exception_stack")
_EVENT_FIELDS = ("host", "kind", "level", "title", "message", "source")


def search_entries(query: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Entries from the ``logs`` family: what search.search_entries answers, from Elasticsearch."""
    must: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    if query.q.strip():
        must.append({"simple_query_string": {"query": simple_query(query.q), "fields": _TEXT_FIELDS,
                                             "default_operator": "and"}})
        body["highlight"] = {"require_field_match": False, "fields": {"message": {
            "number_of_fragments": 0, "pre_tags": [_START], "post_tags": [_STOP]}}}
    body["query"] = {"bool": {"filter": _filters(query, "logs"), "must": must}}
    return _page(_run(es.LOGS, query, body), query, _ENTRY_FIELDS)


def search_events(query: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Events from the ``events`` family."""
    body = {"query": {"bool": {"filter": _filters(query, "events")}}}
    return _page(_run(es.EVENTS, query, body), query, _EVENT_FIELDS)
