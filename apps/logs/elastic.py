"""The Elasticsearch-compatible face of the logs intake, for shippers that speak only Elasticsearch
(rsyslog omelasticsearch, Filebeat, Vector, Fluent Bit, Logstash):

* ``POST /_bulk``, ``POST /<index>/_bulk`` and ``POST /api/v1/logs/_bulk``: the bulk API; the reply has
  Elasticsearch's shape (``took``, ``errors``, ``items[]`` with a status per item), so one bad line is
  reported and the rest stored. Basic auth with the ingest token as password (any user name).
* The handshakes shippers make first: ``HEAD|GET /_cat/health`` (rsyslog), ``GET /_cluster/health``
  (Vector's healthcheck), ``GET /_license`` and ``GET /`` (the version: Filebeat, Vector, newer rsyslog).
  ``/`` is also the site's home page: ``site_root`` answers the version JSON only to clients that are not
  browsers (no ``text/html`` in Accept, or an Authorization header) and hands browsers to the home view.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.views import home
from apps.logs.doors import Outcome, accept
from apps.logs.intake import bulk_items
from apps.metrics.views import DoorError

CLUSTER = "fiberstack"
_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
#: Beats name themselves "Elastic-<beat>/<version> (...)" (libbeat's useragent package).
_BEAT_AGENT = re.compile(r"^Elastic-[A-Za-z]+/(\d+)\.(\d+)\.(\d+)", re.IGNORECASE)


def _version(request: HttpRequest | None = None) -> str:
    """ELASTICSEARCH_COMPAT_VERSION, raised to a Beat's own version when the caller is a newer Beat: Beats
    8.x refuse a cluster whose major.minor is older than theirs unless ``allow_older_versions`` is set
    (libbeat/cmd/instance/beat.go, ``LessThanMajorMinor``), and nothing here depends on the number."""
    configured = str(getattr(settings, "ELASTICSEARCH_COMPAT_VERSION", "8.11.0"))
    match = _BEAT_AGENT.match(request.META.get("HTTP_USER_AGENT", "")) if request is not None else None
    if match is None:
        return configured
    try:
        ours = tuple(int(part) for part in configured.split(".")[:3])
    except ValueError:
        return configured
    theirs = tuple(int(part) for part in match.groups())
    return ".".join(map(str, theirs)) if theirs > ours else configured


def _reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
    # Compact, as Elasticsearch writes it: Fluent Bit, when a reply outgrows its Buffer_Size, looks for the
    # literal '"errors":false,"items":[' (plugins/out_es/es.c, elasticsearch_error_check).
    response = JsonResponse(data, status=status, safe=False, json_dumps_params={"separators": (",", ":")})
    for name, value in {**_HEADERS, **(headers or {})}.items():
        response[name] = value
    return response


def es_error(exc: DoorError) -> JsonResponse:
    """Elasticsearch's error shape (``error.type``/``error.reason``, ``status``) plus our ``code`` and
    ``message``, so both kinds of client read it."""
    reason = {"type": exc.code, "reason": exc.message}
    return _reply({"error": {**reason, "root_cause": [reason]}, "status": exc.status, "code": exc.code,
                   "message": exc.message, **exc.extra}, exc.status, exc.headers)


@csrf_exempt
def bulk(request: HttpRequest, index: str = "") -> HttpResponse:
    """The bulk API. Items answer in order, each ``{"<action>": {"_index", "_id", "status", ...}}``: 201 when
    stored, 400 with ``error.reason`` naming the line when not."""
    started = time.monotonic()
    if request.method != "POST" and request.method != "PUT":
        return es_error(DoorError(405, "method_not_allowed", f"Use POST, not {request.method}.", {"Allow": "POST"}))
    try:
        outcome = accept(request, bulk_items)
    except DoorError as exc:
        return es_error(exc)
    took = int((time.monotonic() - started) * 1000)
    spec = request.GET.get("filter_path", "")
    if spec:
        reply = {"took": took, "errors": bool(outcome.errors), "items": reply_items(outcome, index)}
        return _reply(filter_path(reply, spec))
    # The usual case, written directly: building and encoding 20,000 item dicts cost about as much as
    # parsing the request (bench/logs.py); the bytes are those json.dumps would give (tests/logs/test_elastic.py).
    body = (f'{{"took":{took},"errors":{"true" if outcome.errors else "false"},"items":['
            f'{encoded_items(outcome, index)}]}}')
    response = HttpResponse(body, content_type="application/json")
    response["X-Elastic-Product"] = "Elasticsearch"
    return response


_CREATED = {"_version": 1, "result": "created", "status": 201, "_shards": {"total": 1, "successful": 1, "failed": 0}}
_CREATED_TAIL = "," + json.dumps(_CREATED, separators=(",", ":"))[1:] + "}"


def _refused(reason: str) -> dict[str, Any]:
    return {"status": 400, "error": {"type": "document_parsing_exception", "reason": reason}}


def reply_items(outcome: Outcome, index: str) -> list[dict[str, Any]]:
    """Per item, in request order: ``{"<action>": {"_index", "_id", "_type", "status", ...}}``."""
    items = []
    for position, item in enumerate(outcome.items):
        meta: dict[str, Any] = {"_index": item.index or index or "logs", "_id": item.doc_id or f"{position}",
                                "_type": "_doc"}
        error = outcome.errors.get(position)
        meta.update(_CREATED if error is None else _refused(error))
        items.append({item.action: meta})
    return items


def encoded_items(outcome: Outcome, index: str) -> str:
    """``reply_items`` as compact JSON, stored items from a template (index names encoded once)."""
    quoted: dict[str, str] = {}
    parts = []
    for position, item in enumerate(outcome.items):
        name = item.index or index or "logs"
        error = outcome.errors.get(position)
        if error is not None:
            meta = {"_index": name, "_id": item.doc_id or f"{position}", "_type": "_doc", **_refused(error)}
            parts.append(json.dumps({item.action: meta}, separators=(",", ":")))
            continue
        if name not in quoted:
            quoted[name] = json.dumps(name)
        doc_id = json.dumps(item.doc_id) if item.doc_id else f'"{position}"'
        parts.append(f'{{"{item.action}":{{"_index":{quoted[name]},"_id":{doc_id},"_type":"_doc"{_CREATED_TAIL}')
    return ",".join(parts)


def filter_path(data: dict[str, Any], spec: str) -> dict[str, Any]:
    """Elasticsearch's ``filter_path`` for the bulk reply: comma-separated dotted paths, ``*`` matching
    any key; lists are filtered element-wise. Filebeat asks ``errors,items.*.error,items.*.status``."""
    paths = [part.strip().split(".") for part in spec.split(",") if part.strip()]
    return _keep(data, paths) if paths else data


def _keep(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_keep(element, paths) for element in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, inner in value.items():
        matching = [path for path in paths if path[0] in ("*", "**", key)]
        if not matching:
            continue
        if any(len(path) == 1 for path in matching):
            kept[key] = inner
        else:
            kept[key] = _keep(inner, [path[1:] for path in matching if len(path) > 1])
    return kept


def version_info(request: HttpRequest | None = None) -> dict[str, Any]:
    version = _version(request)
    return {
        "name": CLUSTER,
        "cluster_name": CLUSTER,
        "cluster_uuid": "fiberstack-logs",
        "version": {"number": version, "build_flavor": "default", "build_type": "docker",
                    "build_hash": "fiberstack", "build_date": "2024-01-01T00:00:00.000Z",
                    "build_snapshot": False, "lucene_version": "9.8.0",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "You Know, for Search",
    }


#: User agents of Elasticsearch clients: Beats ("Elastic-filebeat/8.x"), go-elasticsearch, elasticsearch-py,
#: Vector, Fluent Bit, Logstash (Manticore), rsyslog.
_SHIPPER_AGENTS = re.compile(r"elastic|beat|vector|fluent|logstash|manticore|rsyslog|go-http-client", re.IGNORECASE)


def wants_elasticsearch(request: HttpRequest) -> bool:
    """A shipper rather than a browser: it authenticates (browsers never send Authorization on their own),
    names itself in User-Agent, or sends an Accept without text/html (libcurl's ``*/*``, JSON clients);
    browsers loading a page always ask for text/html. No Accept and no such agent: the page."""
    if request.META.get("HTTP_AUTHORIZATION"):
        return True
    if _SHIPPER_AGENTS.search(request.META.get("HTTP_USER_AGENT", "")):
        return True
    accept = request.META.get("HTTP_ACCEPT", "")
    return bool(accept) and "text/html" not in accept


@csrf_exempt
def site_root(request: HttpRequest) -> HttpResponse:
    """``/``: the version JSON to shippers (GET or HEAD), the home page to browsers."""
    if request.method in ("GET", "HEAD") and wants_elasticsearch(request):
        response = _reply(version_info(request))
        if request.method == "HEAD":
            response.content = b""
        return response
    return home(request)


@csrf_exempt
def cat_health(request: HttpRequest) -> HttpResponse:
    """``HEAD|GET /_cat/health``: rsyslog's connection check."""
    now = time.time()
    if request.GET.get("format") == "json":
        return _reply([{"epoch": str(int(now)), "cluster": CLUSTER, "status": "green", "node.total": "1"}])
    line = f"{int(now)} {time.strftime('%H:%M:%S', time.gmtime(now))} {CLUSTER} green 1 1 0 0 0 0 0 0 - 100.0%\n"
    response = HttpResponse("" if request.method == "HEAD" else line, content_type="text/plain; charset=UTF-8")
    response["X-Elastic-Product"] = "Elasticsearch"
    return response


@csrf_exempt
def cluster_health(request: HttpRequest) -> HttpResponse:
    """``GET /_cluster/health``: Vector's and Logstash's healthcheck."""
    return _reply({"cluster_name": CLUSTER, "status": "green", "timed_out": False, "number_of_nodes": 1,
                   "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0})


@csrf_exempt
def license_info(request: HttpRequest) -> HttpResponse:
    """``GET /_license``: Filebeat asks before deciding on index lifecycle features."""
    return _reply({"license": {"status": "active", "type": "basic", "uid": "fiberstack"}})
