"""The storage tiers and their fixed properties: bucket width, table, source tier, partition width,
default retention and how much source time one job step may chew.

Buckets are aligned to multiples of their width since the Unix epoch (``date_bin(width, t, epoch)``),
so a 1h bucket is exactly twelve 5m buckets and every query's step buckets line up with tier buckets
whenever the step is a multiple of the tier width."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

EPOCH_SQL = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


@dataclass(frozen=True, slots=True)
class TierSpec:
    """One storage tier. ``source`` is the tier it is rolled from (``raw`` for 1m)."""

    name: str
    seconds: int
    source: str
    partition: str  # day | week | month | year (plain PostgreSQL partition width / hypertable chunk)
    default_retention_days: int
    # Longest span of *source* time one job step reads; a backlog is worked off in steps of this size.
    step_span: dt.timedelta

    @property
    def table(self) -> str:
        return f"metrics_rollup_{self.name}"

    @property
    def width(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds)

    @property
    def interval_sql(self) -> str:
        return f"INTERVAL '{self.seconds} seconds'"

    def bucket_sql(self, column: str) -> str:
        """SQL: the tier bucket a timestamp column falls in."""
        return f"date_bin({self.interval_sql}, {column}, {EPOCH_SQL})"

    def floor(self, moment: dt.datetime) -> dt.datetime:
        return floor_time(moment, self.seconds)

    def ceil(self, moment: dt.datetime) -> dt.datetime:
        floored = self.floor(moment)
        return floored if floored == moment else floored + self.width


RAW_NAME = "raw"
RAW_DEFAULT_RETENTION_DAYS = 7

TIERS: tuple[TierSpec, ...] = (
    TierSpec("1m", 60, RAW_NAME, "day", 30, dt.timedelta(hours=6)),
    TierSpec("5m", 300, "1m", "week", 90, dt.timedelta(days=2)),
    TierSpec("1h", 3600, "5m", "month", 365, dt.timedelta(days=14)),
    TierSpec("1d", 86400, "1h", "year", 730, dt.timedelta(days=120)),
)
BY_NAME: dict[str, TierSpec] = {tier.name: tier for tier in TIERS}
TIER_NAMES: tuple[str, ...] = (RAW_NAME, *BY_NAME)
DEFAULT_RETENTION_DAYS: dict[str, int] = {RAW_NAME: RAW_DEFAULT_RETENTION_DAYS,
                                          **{t.name: t.default_retention_days for t in TIERS}}


def floor_time(moment: dt.datetime, seconds: int) -> dt.datetime:
    """``moment`` rounded down to a multiple of ``seconds`` since the epoch (UTC, aware)."""
    epoch = int(moment.timestamp() // seconds) * seconds
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def downstream(name: str) -> TierSpec | None:
    """The tier rolled from ``name`` (None for 1d)."""
    for tier in TIERS:
        if tier.source == name:
            return tier
    return None
