"""Write use-cases of silences and maintenance windows: validated, saved and audited in one transaction.

Nothing is broadcast or enqueued: suppression is consulted by the lifecycle whenever it is about to
notify, so a new silence takes effect at the next notification and an expired one lets reminders and
resolved notifications through again (resolved ones are never suppressed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.alerts.models import MaintenanceWindow, Silence
from apps.alerts.suppression import clean_matchers, clean_schedule
from apps.audit.services import record_event, record_update, snapshot
from apps.hosts.models import Host, Service
from apps.organizations.models import Organization

#: Fields ``update_maintenance_window`` accepts.
WINDOW_FIELDS = ("name", "starts_at", "duration_seconds", "rrule", "time_zone", "until", "hosts", "host_tags",
                 "services", "comment")


def _creator(actor: Any) -> dict[str, Any]:
    """created_by (a user, never a token) and the name shown on pages and in the silence reason."""
    describe = getattr(actor, "audit_actor", None)
    if describe is not None:  # AgentToken
        return {"created_by": None, "created_by_repr": describe()[:200]}
    if getattr(actor, "is_authenticated", False):
        return {"created_by": actor, "created_by_repr": actor.get_username()[:200]}
    return {"created_by": None, "created_by_repr": "system"}


# --- silences --------------------------------------------------------------------------------------


@transaction.atomic
def create_silence(*, organization: Organization, matchers: Any, ends_at: dt.datetime, actor: Any,
                   starts_at: dt.datetime | None = None, comment: str = "") -> Silence:
    """Silence the organization's alerts whose labels match every matcher (a matcher string or a list
    of ``{"name", "op", "value"}``) from ``starts_at`` (default now) until ``ends_at``."""
    now = timezone.now()
    starts_at = starts_at or now
    cleaned = clean_matchers(matchers)
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "ends_at must be after starts_at"})
    if ends_at <= now:
        raise ValidationError({"ends_at": "ends_at must be in the future"})
    silence = Silence(organization=organization, matchers=cleaned, starts_at=starts_at, ends_at=ends_at,
                      comment=comment or "", **_creator(actor))
    silence.full_clean()
    silence.save()
    record_event(action="silence.created", actor=actor, organization=organization, target=silence,
                 after=snapshot(silence))
    return silence


@transaction.atomic
def expire_silence(*, silence: Silence, actor: Any) -> Silence:
    """End a silence now (Alertmanager's expire): it stays on record as expired. A pending one is closed
    before it starts. Expiring an expired silence changes nothing and records nothing."""
    now = timezone.now()
    locked = Silence.objects.select_for_update().get(pk=silence.pk)
    if locked.ends_at <= now:
        silence.__dict__.update(locked.__dict__)
        return silence
    before = snapshot(locked)
    locked.ends_at = now
    if locked.starts_at >= now:
        # Never active: keep ends_at > starts_at (the CHECK) with an empty interval in the past.
        locked.starts_at = now - dt.timedelta(microseconds=1)
    locked.save(update_fields=["starts_at", "ends_at", "updated_at"])
    record_event(action="silence.expired", actor=actor, organization=locked.organization_id, target=locked,
                 before=before, after=snapshot(locked))
    silence.__dict__.update(locked.__dict__)
    return silence


# --- maintenance windows ---------------------------------------------------------------------------


def _same_org(organization_id: int, field: str, objects: Iterable[Host | Service]) -> list[Any]:
    objects = list(objects)
    foreign = [str(o) for o in objects if o.organization_id != organization_id]
    if foreign:
        raise ValidationError({field: f"not in this organization: {', '.join(foreign)}"})
    return objects


def _clean_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValidationError({"host_tags": "host_tags must be a JSON object of string keys to string values"})
    return dict(tags)


def _window_snapshot(window: MaintenanceWindow) -> dict[str, Any]:
    data = snapshot(window)
    data["hosts"] = sorted(str(pk) for pk in window.hosts.values_list("public_id", flat=True))
    data["services"] = sorted(str(pk) for pk in window.services.values_list("public_id", flat=True))
    return data


def _validate(window: MaintenanceWindow) -> None:
    clean_schedule(starts_at=window.starts_at, duration_seconds=window.duration_seconds, rrule=window.rrule,
                   time_zone=window.time_zone, until=window.until)
    window.full_clean(exclude=["duration_seconds"])  # named "duration" by clean_schedule


@transaction.atomic
def create_maintenance_window(*, organization: Organization, name: str, starts_at: dt.datetime,
                              duration_seconds: int, actor: Any, rrule: str = "", time_zone: str = "UTC",
                              until: dt.datetime | None = None, hosts: Iterable[Host] = (),
                              host_tags: Mapping[str, str] | None = None, services: Iterable[Service] = (),
                              comment: str = "") -> MaintenanceWindow:
    """Plan maintenance: one-off, or recurring by ``rrule`` in ``time_zone``; scoped to hosts, host tags
    and services (none: the whole organization). Hosts and services must belong to ``organization``."""
    hosts = _same_org(organization.pk, "hosts", hosts)
    services = _same_org(organization.pk, "services", services)
    window = MaintenanceWindow(organization=organization, name=(name or "").strip(),
                               starts_at=starts_at.replace(microsecond=0), duration_seconds=duration_seconds,
                               rrule=(rrule or "").strip(), time_zone=time_zone or "UTC", until=until,
                               host_tags=_clean_tags(host_tags), comment=comment or "", **_creator(actor))
    _validate(window)
    window.save()
    window.hosts.set(hosts)
    window.services.set(services)
    record_event(action="maintenance_window.created", actor=actor, organization=organization, target=window,
                 after=_window_snapshot(window))
    return window


@transaction.atomic
def update_maintenance_window(*, window: MaintenanceWindow, actor: Any, **changes: Any) -> MaintenanceWindow:
    """Change any of WINDOW_FIELDS (``hosts`` / ``services`` replace the sets)."""
    unknown = set(changes) - set(WINDOW_FIELDS)
    if unknown:
        raise TypeError(f"update_maintenance_window() got unexpected fields: {', '.join(sorted(unknown))}")
    locked = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
    before = _window_snapshot(locked)
    hosts = _same_org(locked.organization_id, "hosts", changes.pop("hosts")) if "hosts" in changes else None
    services = (_same_org(locked.organization_id, "services", changes.pop("services"))
                if "services" in changes else None)
    if "host_tags" in changes:
        changes["host_tags"] = _clean_tags(changes["host_tags"])
    if changes.get("starts_at") is not None:
        changes["starts_at"] = changes["starts_at"].replace(microsecond=0)
    for field in ("name", "rrule", "comment"):
        if field in changes:
            changes[field] = (changes[field] or "").strip()
    for field, value in changes.items():
        setattr(locked, field, value)
    _validate(locked)
    locked.save()
    if hosts is not None:
        locked.hosts.set(hosts)
    if services is not None:
        locked.services.set(services)
    after = _window_snapshot(locked)
    record_update(action="maintenance_window.updated", actor=actor, organization=locked.organization_id,
                  target=locked, before=before, after=after)
    window.__dict__.update(locked.__dict__)
    return window


@transaction.atomic
def delete_maintenance_window(*, window: MaintenanceWindow, actor: Any) -> None:
    record_event(action="maintenance_window.deleted", actor=actor, organization=window.organization_id,
                 target=window, before=_window_snapshot(window))
    window.delete()
