"""Inbound alerts: other monitoring systems open and resolve FiberStack alerts through an integration.

* ``payloads`` reads the Alertmanager webhook v4 body and the generic JSON body into ``InboundAlert``s;
* ``services`` manages integrations (audited) and hands received alerts to the lifecycle
  (``record_outcomes(..., complete=False)``), so they are grouped, suppressed, notified, escalated and
  resolved exactly like the alerts of our own rules;
* ``doors`` are the two ingest endpoints, ``api`` the CRUD API, ``admin`` the admin."""
