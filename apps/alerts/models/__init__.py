"""Alert models, one module per concern, re-exported here."""

from apps.alerts.models.alerts import Alert, AlertEvent, AlertGroup
from apps.alerts.models.channels import NotificationChannel
from apps.alerts.models.integrations import Integration
from apps.alerts.models.notifications import DeliveryAttempt, Notification
from apps.alerts.models.rules import AlertRule
from apps.alerts.models.suppression import MaintenanceWindow, Silence

__all__ = ["Alert", "AlertEvent", "AlertGroup", "AlertRule", "DeliveryAttempt", "Integration", "MaintenanceWindow",
           "Notification", "NotificationChannel", "Silence"]
