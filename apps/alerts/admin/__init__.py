"""Admin for alerting, one module per concern; every write goes through apps.alerts.services."""

from apps.alerts.admin import alerts, config, notifications, suppression  # noqa: F401
from apps.alerts.inbound import admin as inbound  # noqa: F401
