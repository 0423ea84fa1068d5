"""Cache invalidation only (house style): the read API's series catalogue caches each series' host
name, so a host renamed or deleted (admin, API or agent metadata) drops this process's catalogue once
the change commits. Other processes refresh theirs within the catalogue's TTL (apps/metrics/read/catalogue.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.hosts.models import Host
from apps.metrics.read.catalogue import CATALOGUE


@receiver(post_save, sender=Host, dispatch_uid="metrics_catalogue_host_saved")
def forget_catalogue_on_host_save(sender: Any, instance: Host, created: bool = False,
                                  update_fields: Any = None, **kwargs: Any) -> None:
    # A new host has no series yet; a save that names its fields without "name" (agent metadata) keeps it.
    if created or (update_fields is not None and "name" not in update_fields):
        return
    transaction.on_commit(CATALOGUE.clear)


@receiver(post_delete, sender=Host, dispatch_uid="metrics_catalogue_host_deleted")
def forget_catalogue_on_host_delete(sender: Any, instance: Host, **kwargs: Any) -> None:
    transaction.on_commit(CATALOGUE.clear)
