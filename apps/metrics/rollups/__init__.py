"""Rollup tiers (1m, 5m, 1h, 1d) over the raw samples: tables (``storage``), the incremental jobs
(``jobs``), the SQL they run (``sql``) with sums that cannot overflow (``sums``), the invalidation log
that brings late data and backfill to every tier (``invalidation``), the quarantine of series a step
cannot compute (``quarantine``), the compressed closed partitions every tier reader merges with the rows
(``compressed``) and the query-side readers (``read``).

Importing this package imports nothing heavy: ``apps.metrics.models`` imports ``rollups.models`` at
app-registry time."""
