"""/api/v1/ endpoints of alerting: rules and channels (config), alerts, silences and maintenance windows,
integrations (inbound alerts)."""

from __future__ import annotations

from apps.alerts.api import alerts, config, suppression
from apps.alerts.inbound import api as inbound

urlpatterns = [*config.urlpatterns, *alerts.urlpatterns, *suppression.urlpatterns, *inbound.urlpatterns]
