"""Rule evaluation: reads metric windows through ``apps.metrics.read`` and hands ``Outcome``s to the
lifecycle (``services.lifecycle.record_outcomes``).

Modules: ``selection`` (which series a rule watches), ``windows`` (reduced values through
``read.window``), ``reducers`` (rate, comparators, severity), ``absence`` / ``anomaly`` (those kinds),
``heartbeats`` (exact host last-push times for host down), ``engine`` (``evaluate_rule`` /
``evaluate_rules`` -- pure -- and ``run_rules`` -- records), ``tick`` (claiming due rules) and
``consumer`` (the ingest hook)."""
