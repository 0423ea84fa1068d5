"""Elasticsearch copies of log entries, when ``ELASTICSEARCH_URL`` is set (django-elasticsearch-dsl).

PostgreSQL stays the store of record and the search backend of the API and pages: Elasticsearch gets a
copy for people who already run Kibana on it. So nothing user-facing depends on it: ingest commits to
PostgreSQL and, after commit, queues the Celery task ``logs.index_entries`` with the new rows' ids; the
task reads them back and bulk-indexes them (retried with backoff while Elasticsearch is unreachable,
then dropped with a warning). Autosync is off (``ELASTICSEARCH_DSL_AUTOSYNC``, and the signal processor
that does nothing): rows are written by COPY, never saved through the ORM.

Documents go to ``<FIBERSTACK_LOGS_ES_INDEX>-YYYY.MM.DD`` (UTC day of the entry), so Elasticsearch-side
retention can delete whole indices; ``index_template`` declares the mapping for that pattern once."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django_elasticsearch_dsl import Document, fields
from django_elasticsearch_dsl.registries import registry
from elasticsearch import Elasticsearch

from apps.logs.models import LogEntry

_TEMPLATE_INSTALLED: set[str] = set()
_CLIENTS: dict[str, Any] = {}


def enabled() -> bool:
    return bool(getattr(settings, "ELASTICSEARCH_URL", ""))


def index_prefix() -> str:
    return str(getattr(settings, "FIBERSTACK_LOGS_ES_INDEX", "fiberstack-logs"))


def index_for(time: dt.datetime) -> str:
    return f"{index_prefix()}-{time.astimezone(dt.UTC):%Y.%m.%d}"


@registry.register_document
class LogEntryDocument(Document):
    """One log entry as Elasticsearch sees it: keywords for the filters, text for the message."""

    # Keywords rather than analysed text for the columns people filter on exactly.
    host = fields.KeywordField()
    service = fields.KeywordField()
    level = fields.KeywordField()
    program = fields.KeywordField()
    request_id = fields.KeywordField()
    trace_id = fields.KeywordField()
    exception_type = fields.KeywordField()
    context = fields.ObjectField(enabled=False)
    exception_stack = fields.TextField(index=False)

    class Index:
        name = "fiberstack-logs"  # the template's pattern decides; documents pick a daily index
        settings = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "5s"}

    class Django:
        model = LogEntry
        fields = ["time", "organization_id", "message", "exception_message"]
        ignore_signals = True
        auto_refresh = False
        queryset_pagination = 5000

    def prepare_context(self, instance: LogEntry) -> dict[str, Any]:
        value = instance.context
        return json.loads(value) if isinstance(value, str) else (value or {})

    def _get_connection(self, using: Any = None) -> Any:
        """The client of ``ELASTICSEARCH_URL`` as it is now (one per URL), not the connection configured
        at start-up: so the setting alone decides where copies go."""
        return client()

    def generate_id(self, instance: LogEntry) -> str:  # type: ignore[override]
        return f"{instance.organization_id}-{instance.id}"

    def _prepare_action(self, object_instance: LogEntry, action: str) -> dict[str, Any]:
        entry = super()._prepare_action(object_instance, action)
        entry["_index"] = index_for(object_instance.time)
        return entry


def client() -> Any:
    url = str(getattr(settings, "ELASTICSEARCH_URL", ""))
    if url not in _CLIENTS:
        _CLIENTS[url] = Elasticsearch(url, request_timeout=10, max_retries=1)
    return _CLIENTS[url]


def index_template() -> dict[str, Any]:
    """The composable index template for ``<prefix>-*``: settings and mapping of LogEntryDocument."""
    return {
        "index_patterns": [f"{index_prefix()}-*"],
        "priority": 200,
        "template": {"settings": dict(LogEntryDocument.Index.settings),
                     "mappings": LogEntryDocument._doc_type.mapping.to_dict()},
        "_meta": {"managed_by": "fiberstack"},
    }


def install_template(client: Any) -> None:
    """PUT the template once per process (idempotent on the Elasticsearch side anyway)."""
    key = f"{index_prefix()}@{id(client)}"
    if key in _TEMPLATE_INSTALLED:
        return
    client.indices.put_index_template(name=index_prefix(), **index_template())
    _TEMPLATE_INSTALLED.add(key)


def index_entries(*, organization_id: int, ids: list[int], start: dt.datetime, end: dt.datetime) -> int:
    """Bulk-index the entries with ``ids`` (their times within [start, end], so only those partitions are
    read); returns how many were sent. Raises elasticsearch's ConnectionError/TransportError."""
    document = LogEntryDocument()
    install_template(client())
    rows = LogEntry.objects.filter(organization_id=organization_id, time__gte=start, time__lte=end, id__in=ids)
    sent, _ = document.update(rows.iterator(chunk_size=5000), refresh=False)
    return int(sent)
