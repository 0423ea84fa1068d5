"""Elasticsearch copies, when ``ELASTICSEARCH_URL`` is set (django-elasticsearch-dsl): the shared helper of
every index family (logs and events here, alerts in apps/alerts/search.py) and the two documents of this app.

PostgreSQL stays the store of record. Nothing a user writes waits on Elasticsearch: a write commits to
PostgreSQL and, after commit, queues a Celery task with the new rows' ids; the task reads them back and
bulk-indexes them (retried with backoff while Elasticsearch is unreachable, then dropped with a warning).
Autosync is off (``ELASTICSEARCH_DSL_AUTOSYNC``, and the signal processor that does nothing): rows are
written by COPY, never saved through the ORM.

Each family writes daily indices ``<prefix>-YYYY.MM.DD`` (UTC day of the document's time) whose settings
and mapping one composable index template declares (PUT once per process before the first bulk), so
retention deletes whole indices (``apps/logs/es_retention.py``), as ILM would. A family registers itself
here (``register``); a higher floor adds its own without this module importing it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django_elasticsearch_dsl import Document, fields
from django_elasticsearch_dsl.registries import registry
from elasticsearch import Elasticsearch

from apps.logs.models import LogEntry, LogEvent

_TEMPLATE_INSTALLED: set[str] = set()
_CLIENTS: dict[str, Any] = {}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def enabled() -> bool:
    return bool(getattr(settings, "ELASTICSEARCH_URL", ""))


def client() -> Any:
    """The client of ``ELASTICSEARCH_URL`` as it is now (one per URL), so the setting alone decides."""
    url = str(getattr(settings, "ELASTICSEARCH_URL", ""))
    if url not in _CLIENTS:
        _CLIENTS[url] = Elasticsearch(url, request_timeout=10, max_retries=1)
    return _CLIENTS[url]


def micros(time: dt.datetime) -> int:
    """Exact microseconds since the epoch (the ``time_us`` sort key; floats would round)."""
    delta = time - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(value))


@dataclass(frozen=True, slots=True)
class IndexFamily:
    """One kind of document in Elasticsearch: its index prefix (a setting), its document class and which
    organization retention applies (``logs`` or ``events``, apps/logs/retention.py)."""

    name: str
    prefix_setting: str
    default_prefix: str
    document: type[DailyDocument]
    retention_kind: str

    @property
    def prefix(self) -> str:
        return str(getattr(settings, self.prefix_setting, "") or self.default_prefix)

    @property
    def pattern(self) -> str:
        return f"{self.prefix}-*"

    def index_for(self, time: dt.datetime) -> str:
        return f"{self.prefix}-{time.astimezone(dt.UTC):%Y.%m.%d}"

    def day_of(self, index: str) -> dt.date | None:
        """The day of one of this family's daily indices; None for any other name."""
        if not index.startswith(self.prefix + "-"):
            return None
        try:
            return dt.datetime.strptime(index[len(self.prefix) + 1:], "%Y.%m.%d").date()
        except ValueError:
            return None

    def template(self) -> dict[str, Any]:
        """The composable index template for the family's daily indices."""
        return {
            "index_patterns": [self.pattern],
            "priority": 200,
            "template": {"settings": dict(self.document.Index.settings),
                         "mappings": self.document._doc_type.mapping.to_dict()},
            "_meta": {"managed_by": "fiberstack", "family": self.name},
        }


FAMILIES: dict[str, IndexFamily] = {}


def register(family: IndexFamily) -> IndexFamily:
    FAMILIES[family.name] = family
    return family


class DailyDocument(Document):
    """A document that goes to its family's daily index and has a stable id, so a retried task
    overwrites instead of duplicating."""

    family_name = ""
    time_attribute = "time"

    def _get_connection(self, using: Any = None) -> Any:
        return client()

    def generate_id(self, instance: Any) -> str:  # type: ignore[override]
        return f"{instance.organization_id}-{instance.id}"

    def _prepare_action(self, object_instance: Any, action: str) -> dict[str, Any]:
        entry = super()._prepare_action(object_instance, action)
        entry["_index"] = FAMILIES[self.family_name].index_for(getattr(object_instance, self.time_attribute))
        return entry

    def prepare_time_us(self, instance: Any) -> int:
        return micros(getattr(instance, self.time_attribute))

    def prepare_context(self, instance: Any) -> dict[str, Any]:
        value = getattr(instance, "context", None)
        return json.loads(value) if isinstance(value, str) else (value or {})


# Daily indices of every family (logs, events, alerts): one shard, no replica, searchable within 5 s.
DAILY_SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "5s"}


@registry.register_document
class LogEntryDocument(DailyDocument):
    """One log entry as Elasticsearch sees it: keywords for the filters, text for the message."""

    family_name = "logs"
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
    # Sort key of search (newest first, then id): microseconds, because a date sorts by milliseconds and
    # the keyset cursor of the API is exact to the microsecond.
    time_us = fields.LongField()

    class Index:
        name = "fiber-logs"  # the template's pattern decides; documents pick a daily index
        settings = DAILY_SETTINGS

    class Django:
        model = LogEntry
        fields = ["id", "time", "organization_id", "host_id", "message", "exception_message"]
        ignore_signals = True
        auto_refresh = False
        queryset_pagination = 5000


@registry.register_document
class EventDocument(DailyDocument):
    """One event (deploys, node up/down, alert transitions recorded by code)."""

    family_name = "events"
    host = fields.KeywordField()
    kind = fields.KeywordField()
    level = fields.KeywordField()
    source = fields.KeywordField()
    context = fields.ObjectField(enabled=False)
    time_us = fields.LongField()

    class Index:
        name = "fiber-events"
        settings = DAILY_SETTINGS

    class Django:
        model = LogEvent
        fields = ["id", "time", "organization_id", "host_id", "title", "message"]
        ignore_signals = True
        auto_refresh = False
        queryset_pagination = 5000


LOGS = register(IndexFamily("logs", "FIBERSTACK_LOGS_ES_INDEX", "fiber-logs", LogEntryDocument, "logs"))
EVENTS = register(IndexFamily("events", "FIBERSTACK_EVENTS_ES_INDEX", "fiber-events", EventDocument, "events"))


def install_template(family: IndexFamily) -> None:
    """PUT the family's template once per process and URL (idempotent on the Elasticsearch side anyway)."""
    key = f"{family.prefix}@{getattr(settings, 'ELASTICSEARCH_URL', '')}"
    if key in _TEMPLATE_INSTALLED:
        return
    client().indices.put_index_template(name=family.prefix, **family.template())
    _TEMPLATE_INSTALLED.add(key)


def index_objects(family: IndexFamily, objects: Any) -> int:
    """Bulk-index ``objects`` (instances of the family's model) after making sure the template exists;
    returns how many were sent. Raises elasticsearch's ConnectionError/TransportError/ApiError."""
    install_template(family)
    sent, _ = family.document().update(objects, refresh=False)
    return int(sent)


def index_rows(family: IndexFamily, *, organization_id: int, ids: list[int], start: dt.datetime,
               end: dt.datetime) -> int:
    """Index the rows of a partitioned table with ``ids`` (their times within [start, end], so only those
    partitions are read)."""
    model = family.document.Django.model
    rows = model.objects.filter(organization_id=organization_id, time__gte=start, time__lte=end, id__in=ids)
    return index_objects(family, rows.iterator(chunk_size=5000))


def index_entries(*, organization_id: int, ids: list[int], start: dt.datetime, end: dt.datetime) -> int:
    return index_rows(LOGS, organization_id=organization_id, ids=ids, start=start, end=end)
