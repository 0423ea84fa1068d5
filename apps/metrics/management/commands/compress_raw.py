"""``manage.py compress_raw [--older-than 1d] [--limit N]``: compress due raw partitions now, then the due
rollup partitions and the closed hours of the open 1m partitions (plain PostgreSQL), or raw and rollup chunks
natively (TimescaleDB: segment by series, order by time), with the same options on both. The beat task
``metrics.compress_chunks`` does the same every run; this is for catching up after an upgrade or measuring."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.cli import duration, whole_number
from apps.core.locks import advisory_lock


class Command(BaseCommand):
    help = ("Compress closed raw and rollup partitions, and the closed hours of the open 1m partitions, whose "
            "rollups are final (one transaction per partition or hour).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=duration, default=None,
                            help="age after a day's end (default FIBERSTACK_COMPRESS_RAW_AFTER_SECONDS, 1d; "
                                 "on TimescaleDB FIBERSTACK_COMPRESS_AFTER_DAYS, 3d)")
        parser.add_argument("--limit", type=whole_number(1, 1_000_000), default=None,
                            help="compress at most this many partitions or chunks")

    def handle(self, *args: Any, older_than: dt.timedelta | None, limit: int | None, **options: Any) -> None:
        from apps.metrics.rollup_tasks import run_compression

        with advisory_lock("metrics.apply_retention") as acquired:
            if not acquired:
                raise CommandError("retention or compression is running; try again later")
            self.stdout.write(run_compression(older_than=older_than, limit=limit))
