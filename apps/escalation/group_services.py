"""Write use-cases for group escalation: group routes (validated, audited in the same transaction, for the
API and the admin alike) and acting on a whole group at once (acknowledge / resolve every open alert of
it through the alert lifecycle, so each alert's timeline, audit row and hook are the usual ones)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.alerts.choices import AlertState
from apps.alerts.models import Alert, AlertGroup, AlertRule
from apps.alerts.services.lifecycle import AlertStateError, acknowledge_alert, resolve_alert
from apps.audit.services import record_event, record_update
from apps.escalation.models import EscalationPolicy, GroupRoute
from apps.organizations.models import Organization

MAX_MATCHERS = 20


def route_snapshot(route: GroupRoute) -> dict[str, Any]:
    return {"name": route.name, "position": route.position, "matchers": dict(route.matchers or {}),
            "rule": str(route.rule.public_id) if route.rule else None, "policy": str(route.policy.public_id),
            "enabled": route.enabled}


def clean_matchers(value: Any) -> dict[str, str]:
    """``{"label": "value"}`` with non-empty label names and string values (equality matchers)."""
    if not isinstance(value, Mapping):
        raise ValidationError({"matchers": 'An object of label -> value, e.g. {"team": "storage"}.'})
    if len(value) > MAX_MATCHERS:
        raise ValidationError({"matchers": f"At most {MAX_MATCHERS} matchers."})
    cleaned: dict[str, str] = {}
    for name, expected in value.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValidationError({"matchers": f"Label names must be non-empty strings: {name!r}."})
        if not isinstance(expected, str | int | float) or isinstance(expected, bool) or len(str(expected)) > 1000:
            raise ValidationError({"matchers": f"The value of {name!r} must be a string."})
        cleaned[name.strip()] = str(expected)
    return cleaned


def _check(organization_id: int, rule: AlertRule | None, policy: EscalationPolicy) -> None:
    if policy.organization_id != organization_id:
        raise ValidationError({"policy": "No such policy."})
    if rule is not None and rule.organization_id != organization_id:
        raise ValidationError({"rule": "No such rule."})


def _save(route: GroupRoute) -> None:
    try:
        with transaction.atomic():
            route.save()
    except IntegrityError as exc:
        raise ValidationError({"name": "This organization already has a group route with this name."}) from exc


@transaction.atomic
def create_group_route(*, organization: Organization, name: str, policy: EscalationPolicy, actor: Any,
                       matchers: Any = None, rule: AlertRule | None = None, position: int = 0,
                       enabled: bool = True) -> GroupRoute:
    """Add a route: groups matching it escalate once per group through ``policy`` (from their next firing)."""
    _check(organization.pk, rule, policy)
    route = GroupRoute(organization=organization, name=name.strip(), policy=policy, rule=rule, position=position,
                       matchers=clean_matchers(matchers or {}), enabled=enabled)
    if not route.name:
        raise ValidationError({"name": "A group route needs a name."})
    _save(route)
    record_event(action="escalation.group_route_created", actor=actor, organization=organization, target=route,
                 after=route_snapshot(route))
    return route


#: ``rule`` not given (keep it), as opposed to None (any rule).
KEEP: Any = object()


@transaction.atomic
def update_group_route(*, route: GroupRoute, actor: Any, name: str | None = None,
                       policy: EscalationPolicy | None = None, matchers: Any = None, rule: Any = KEEP,
                       position: int | None = None, enabled: bool | None = None) -> GroupRoute:
    """Change a route; running group escalations go on with the policy they started with."""
    route = GroupRoute.objects.select_for_update(of=("self",)).select_related("rule", "policy").get(pk=route.pk)
    before = route_snapshot(route)
    if name is not None:
        route.name = name.strip()
        if not route.name:
            raise ValidationError({"name": "A group route needs a name."})
    if policy is not None:
        route.policy = policy
    if matchers is not None:
        route.matchers = clean_matchers(matchers)
    if rule is not KEEP:
        route.rule = rule
    if position is not None:
        route.position = position
    if enabled is not None:
        route.enabled = enabled
    _check(route.organization_id, route.rule, route.policy)
    _save(route)
    after = route_snapshot(route)
    record_update(action="escalation.group_route_updated", actor=actor, organization=route.organization_id,
                  target=route, before=before, after=after)
    return route


@transaction.atomic
def delete_group_route(*, route: GroupRoute, actor: Any) -> None:
    """Groups no longer take this route from their next firing (running escalations go on until they end)."""
    record_event(action="escalation.group_route_deleted", actor=actor, organization=route.organization_id,
                 target=route, before=route_snapshot(route), after=None)
    route.delete()


# --- acting on a whole group -----------------------------------------------------------------------


@transaction.atomic
def acknowledge_group(*, group: AlertGroup, actor: Any) -> list[Alert]:
    """Acknowledge every firing alert of the group (one transaction: the hooks run after it, so the group
    escalation stands down once, seeing every alert acknowledged). Returns the alerts acknowledged."""
    return _act(group, actor, (AlertState.FIRING,), acknowledge_alert, "escalation.group_acknowledged")


@transaction.atomic
def resolve_group(*, group: AlertGroup, actor: Any) -> list[Alert]:
    """Resolve every open alert of the group (its escalation then ends)."""
    return _act(group, actor, (AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED), resolve_alert,
                "escalation.group_resolved")


def _act(group: AlertGroup, actor: Any, states: tuple[str, ...], act: Any, action: str) -> list[Alert]:
    done: list[Alert] = []
    for alert in Alert.objects.filter(group=group, state__in=states).select_related("rule").order_by("pk"):
        try:
            done.append(act(alert=alert, actor=actor))
        except AlertStateError:
            continue  # moved on meanwhile (someone else acted on it): nothing to do for this one
    if not done:
        verb = "acknowledge" if action.endswith("acknowledged") else "resolve"
        raise AlertStateError(f"The group has no alert to {verb}.", state=group.state)
    record_event(action=action, actor=actor, organization=group.organization_id, target=group,
                 changes={"alerts": [None, [str(a.public_id) for a in done]]})
    return done
