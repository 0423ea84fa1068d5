"""Write use-cases of alerting, one module per concern: ``lifecycle`` (alert transitions), ``grouping``,
``outbox`` (notification rows), ``config`` (rules and channels), ``suppression`` (silences, maintenance)."""
