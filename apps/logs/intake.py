"""Request bodies -> documents, for the three doors: ``POST /api/v1/logs`` (a JSON array, one object, or
NDJSON: what syslog-ng's ``http()`` with ``batch-lines`` and most scripts send) and the Elasticsearch
bulk API (action line + source line pairs: rsyslog omelasticsearch, Filebeat, Vector, Fluent Bit).

Parsing never raises for one bad line: each item carries either its document or the sentence saying why
it was refused, so the good ones are stored and the bad ones reported by position."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class BodyError(ValueError):
    """The whole request is unusable (no item can be told apart from the next)."""


@dataclass(slots=True)
class Item:
    """One entry of a request: its place (``line 3`` / ``item 3``), the document or the error."""

    location: str
    doc: Any = None
    error: str | None = None
    # Bulk only: the action ("index", "create", ...), and _index / _id as the client sent them.
    action: str = "index"
    index: str = ""
    doc_id: str | None = None


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Log lines in Latin-1 are common; refusing them would lose data, so bad bytes are replaced.
        if exc.start == 0 and body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise BodyError("the body is UTF-16; send UTF-8") from None
        return body.decode("utf-8", errors="replace")


def _loads(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


def json_items(body: bytes, max_items: int) -> list[Item]:
    """A JSON array of entries, a single entry object, or NDJSON (one object per line)."""
    text = _decode(body).strip()
    if not text:
        raise BodyError("the body is empty: send a JSON array of entries or one JSON object per line")
    if text.startswith("["):
        docs, error = _loads(text)
        if error is not None:
            raise BodyError(f"the body starts with '[' but is not a JSON array: {error}")
        if len(docs) > max_items:
            raise BodyError(f"{len(docs)} entries in one request; the limit is {max_items}")
        return [Item(f"item {n}", doc) for n, doc in enumerate(docs)]
    items: list[Item] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(items) >= max_items:
            raise BodyError(f"more than {max_items} entries in one request")
        doc, error = _loads(line)
        items.append(Item(f"line {number}", doc, error))
    return items


_ACTIONS = ("index", "create", "update", "delete")


def bulk_items(body: bytes, max_items: int) -> list[Item]:
    """The Elasticsearch ``_bulk`` body: an action line (``{"index": {"_index": ..}}``, legacy ``_type``
    accepted and ignored) followed, except for ``delete``, by the document line. Only ``index`` and
    ``create`` store; ``update`` and ``delete`` are answered per item (logs are append-only). An action
    line that is not an action makes the rest unpairable, so it fails the request, as in Elasticsearch."""
    lines = _decode(body).split("\n")
    items: list[Item] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line.strip():
            continue
        action, error = _loads(line)
        if error is not None or not isinstance(action, dict) or len(action) != 1 or next(iter(action)) not in _ACTIONS:
            reason = error or "expected an action such as {\"index\": {}}"
            raise BodyError(f"line {number}: malformed action line: {reason}")
        name, meta = next(iter(action.items()))
        meta = meta if isinstance(meta, dict) else {}
        if len(items) >= max_items:
            raise BodyError(f"more than {max_items} actions in one request")
        item = Item(f"line {number}", action=name, index=str(meta.get("_index") or ""),
                    doc_id=str(meta["_id"]) if meta.get("_id") is not None else None)
        items.append(item)
        if name == "delete":
            item.error = "logs are append-only: delete is not supported"
            continue
        while number < len(lines) and not lines[number].strip():
            number += 1
        if number >= len(lines):
            item.error = "the action has no document line after it"
            break
        item.location = f"line {number + 1}"
        item.doc, item.error = _loads(lines[number])
        number += 1
        if name == "update" and item.error is None:
            item.error = "logs are append-only: update is not supported"
    return items
