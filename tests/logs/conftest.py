"""Helpers of the logs tests: post through the real doors, search through the real API."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.test import Client


def basic(token: str, user: str = "shipper") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def post_logs(client: Client, token: str, body: Any, path: str = "/api/v1/logs",
              content_type: str = "application/json", **headers: str) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def ndjson(*docs: dict[str, Any]) -> str:
    return "\n".join(json.dumps(doc) for doc in docs) + "\n"


def bulk_body(*docs: Any, action: str = "index", legacy_type: bool = False) -> str:
    meta: dict[str, Any] = {"_index": "fiber-logs"}
    if legacy_type:
        meta["_type"] = "events"
    lines = []
    for doc in docs:
        lines.append(json.dumps({action: meta}))
        lines.append(doc if isinstance(doc, str) else json.dumps(doc))
    return "\n".join(lines) + "\n"


def search(client: Client, token: str, **params: Any) -> Any:
    return client.get("/api/v1/logs", params, HTTP_AUTHORIZATION=f"Bearer {token}")
