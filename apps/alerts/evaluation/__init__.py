"""Rule evaluation: reads metric windows through ``apps.metrics.read`` and hands ``Outcome``s to the
lifecycle."""
