"""Rollup tiers (1m, 5m, 1h, 1d) over the raw samples: tables (``storage``), the incremental jobs
(``jobs``), the SQL they run (``sql``), the query-side readers (``read``) and the lag report (``lag``).

Importing this package imports nothing heavy: ``apps.metrics.models`` imports ``rollups.models`` at
app-registry time."""
