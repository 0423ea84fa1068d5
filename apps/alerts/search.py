"""Alerts in Elasticsearch, next to the logs and events copies (``ELASTICSEARCH_URL`` set): one document
per alert (its current state, times and labels) in daily indices ``<FIBERSTACK_ALERTS_ES_INDEX>-YYYY.MM.DD``
by the alert's creation day, so every transition overwrites the same document.

Built on the logs app's shared helper (apps/logs/es.py: family registry, index template, daily index,
retention); logs never imports this module -- the family registers itself here, the transition hook
(``FIBERSTACK_ALERT_CONSUMERS``) calls ``consume`` after commit and ``alerts.index_alert`` copies it on a
Celery worker, so an Elasticsearch outage never fails or slows an alert transition. Retention follows the
organization's event retention (apps/logs/retention.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_elasticsearch_dsl import fields
from django_elasticsearch_dsl.registries import registry

from apps.alerts.hooks import AlertTransition
from apps.alerts.models import Alert
from apps.logs import es


@registry.register_document
class AlertDocument(es.DailyDocument):
    """One alert as Kibana sees it: keywords for state, severity, rule and host; labels kept, not indexed."""

    family_name = "alerts"
    time_attribute = "created_at"
    id = fields.KeywordField(attr="public_id")
    organization_id = fields.IntegerField()
    time = fields.DateField(attr="created_at")
    time_us = fields.LongField()
    rule = fields.KeywordField()
    fingerprint = fields.KeywordField()
    host = fields.KeywordField()
    state = fields.KeywordField()
    severity = fields.KeywordField()
    labels = fields.ObjectField(enabled=False)

    class Index:
        name = "fiber-alerts"
        settings = es.DAILY_SETTINGS

    class Django:
        model = Alert
        fields = ["value", "threshold", "summary", "description", "started_at",
                  "acknowledged_at", "resolved_at", "updated_at"]
        ignore_signals = True
        auto_refresh = False

    def generate_id(self, instance: Alert) -> str:  # type: ignore[override]
        return str(instance.public_id)

    def prepare_id(self, instance: Alert) -> str:
        return str(instance.public_id)

    def prepare_rule(self, instance: Alert) -> str:
        return instance.rule.name

    def prepare_host(self, instance: Alert) -> str:
        return instance.host.name if instance.host_id else ""

    def prepare_labels(self, instance: Alert) -> dict[str, Any]:
        return dict(instance.labels or {})


ALERTS = es.register(es.IndexFamily("alerts", "FIBERSTACK_ALERTS_ES_INDEX", "fiber-alerts", AlertDocument, "events"))


def index_alert(alert_id: int) -> int:
    """Send the alert's current state; 0 when it no longer exists."""
    alerts = Alert.objects.filter(pk=alert_id).select_related("rule", "host")
    return es.index_objects(ALERTS, list(alerts))


def consume(transition: AlertTransition) -> None:
    """``FIBERSTACK_ALERT_CONSUMERS`` entry: queue the alert's copy (after the transition committed)."""
    if not es.enabled():
        return
    from apps.alerts.tasks.search import index_alert_task

    queue = getattr(settings, "FIBERSTACK_LOGS_ES_QUEUE", "") or None
    index_alert_task.apply_async((transition.alert_id,), queue=queue)
