"""/api/v1/ endpoints of alerting: rules and channels (config), alerts, silences and maintenance windows."""

from __future__ import annotations

from apps.alerts.api import alerts, config, suppression

urlpatterns = [*config.urlpatterns, *alerts.urlpatterns, *suppression.urlpatterns]
