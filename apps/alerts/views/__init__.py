"""Alerting pages under /<org_slug>/: alerts, rules, channels, silences and maintenance windows.

Views parse, check the role and call the services (apps.alerts.services.*); nothing here writes a row
itself. The role each action needs is in ``apps.alerts.views.common`` and matches the REST API's, so a
button a role may not use is neither shown nor accepted through either door."""
