"""``manage.py flush_metrics_caches``: run it after restoring a database backup.

The ingest path caches database ids in Redis: host name -> Host id, series key -> Series id, and the hot
tier's latest value per series id. Redis outlives the database, so after a restore those keys may name
rows that no longer exist or that now mean something else, and samples would be stored under the wrong
series without any error. Keys are scoped by the database's cache epoch and each organization's
public_id (``apps.hosts.cache_scope``), which covers a re-created database or organization by itself; a
restore *in place* (point-in-time recovery, a file-level backup, ``pg_restore --clean`` into the same
database) brings the old epoch back, and that is what this command is for. It

1. gives the database a new cache epoch, so every key written before is unreachable (running web
   workers pick the new epoch up within ``cache_scope.EPOCH_TTL`` seconds; restarting them is quicker);
2. deletes the cached keys (host ids, host attribute fingerprints, last-seen throttles, series ids, hot
   tier, live-event throttles) so that they do not sit in Redis until evicted.

Every FiberStack database that shares this Redis database and ``KEY_PREFIX`` loses these caches too;
they refill from PostgreSQL on the next push (the hot tier with the next sample of each series).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

# Django-cache keys (django-redis adds KEY_PREFIX and the version itself); hosts:seen and hosts:live are
# the last_seen and live-event throttles of apps.hosts.services.mark_hosts_seen.
CACHE_PATTERNS = ("hosts:id:*", "hosts:attrs:*", "hosts:seen:*", "hosts:live:*")
# Raw Redis keys that carry KEY_PREFIX explicitly (apps.metrics.series, hot).
RAW_PATTERNS = ("metrics:series:*", "metrics:hot:*")


class Command(BaseCommand):
    help = (
        "Run after restoring a database backup: give the database a new cache epoch and delete the host-id, "
        "series-id and hot-tier caches in Redis, so no id cached before the restore is used again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--keep-epoch", action="store_true",
                            help="only delete the Redis keys; keep the database's cache epoch")

    def handle(self, *args: Any, **options: Any) -> None:
        from django_redis import get_redis_connection

        from apps.hosts import cache_scope
        from apps.hosts import services as host_services
        from apps.metrics import series

        if not options["keep_epoch"]:
            with transaction.atomic():
                new = cache_scope.rotate()
            self.stdout.write(f"new cache epoch: {new}")
        deleted = 0
        for pattern in CACHE_PATTERNS:
            deleted += cache.delete_pattern(pattern) or 0
        client = get_redis_connection("default")
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
        for pattern in RAW_PATTERNS:
            batch: list[Any] = []
            for key in client.scan_iter(match=f"{prefix}:{pattern}", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += client.unlink(*batch)
        series.forget_local_cache()
        host_services._local_ids.clear()
        host_services._local_fingerprints.clear()
        self.stdout.write(self.style.SUCCESS(f"deleted {deleted} cached keys"))
