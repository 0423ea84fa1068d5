"""Write use-cases for escalation policies, rule routing and contact methods: validate, write and audit in
one transaction (Zulip ``do_*``). The API and the admin both come through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.models import AlertRule, NotificationChannel
from apps.audit.services import record_event, record_update, snapshot
from apps.escalation import verification
from apps.escalation.choices import ContactKind, StepAction
from apps.escalation.models import ContactMethod, EscalationPolicy, EscalationStep, OnCallSchedule, RulePolicy
from apps.escalation.services import check_members
from apps.organizations.models import Organization

#: The ``NotificationChannel.managed_by`` of the channels escalation makes for contact methods.
MANAGED_BY = "escalation"


@dataclass(frozen=True)
class StepData:
    """A step as the API and the admin describe it (objects already resolved in the organization)."""

    action: str
    wait_seconds: int = 0
    schedule: OnCallSchedule | None = None
    users: Sequence[Any] = ()
    channels: Sequence[NotificationChannel] = field(default_factory=tuple)


def step_snapshot(step: EscalationStep) -> dict[str, Any]:
    return {"position": step.position, "action": step.action, "wait_seconds": step.wait_seconds,
            "schedule": str(step.schedule.public_id) if step.schedule else None,
            "users": sorted(u.get_username() for u in step.users.all()),
            "channels": sorted(str(c.public_id) for c in step.channels.all())}


def policy_snapshot(policy: EscalationPolicy) -> dict[str, Any]:
    """The policy's fields and its steps, for before/after diffs in the audit log."""
    return {**snapshot(policy), "steps": [step_snapshot(s) for s in policy.steps.order_by("position")]}


def _check_step(organization: Organization, index: int, data: StepData) -> None:
    where = f"Step {index}"
    if data.action not in StepAction.values:
        raise ValidationError({"steps": f"{where}: unknown action {data.action!r}."})
    if data.action == StepAction.NOTIFY_SCHEDULE and data.schedule is None:
        raise ValidationError({"steps": f"{where}: notify_schedule needs a schedule."})
    if data.action == StepAction.NOTIFY_USER and not data.users:
        raise ValidationError({"steps": f"{where}: notify_user needs at least one user."})
    if data.action == StepAction.NOTIFY_CHANNEL and not data.channels:
        raise ValidationError({"steps": f"{where}: notify_channel needs at least one channel."})
    if data.schedule is not None and data.schedule.organization_id != organization.pk:
        raise ValidationError({"steps": f"{where}: no such schedule."})
    if any(c.organization_id != organization.pk or c.managed_by for c in data.channels):
        raise ValidationError({"steps": f"{where}: no such channel."})
    if data.users:
        check_members(organization, list(data.users), field_name="steps")


def _write_steps(policy: EscalationPolicy, steps: Sequence[StepData]) -> None:
    policy.steps.all().delete()
    for index, data in enumerate(steps):
        _check_step(policy.organization, index, data)
        step = EscalationStep.objects.create(
            policy=policy, position=index, action=data.action, wait_seconds=data.wait_seconds,
            schedule=data.schedule if data.action == StepAction.NOTIFY_SCHEDULE else None)
        if data.action == StepAction.NOTIFY_USER:
            step.users.set(list(data.users))
        if data.action == StepAction.NOTIFY_CHANNEL:
            step.channels.set(list(data.channels))


def _save_policy(policy: EscalationPolicy) -> None:
    """Save, turning a concurrent duplicate name into a 400, not a 500."""
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError as exc:
        raise ValidationError({"name": "This organization already has a policy with this name."}) from exc


@transaction.atomic
def create_policy(*, organization: Organization, name: str, actor: Any, description: str = "",
                  repeat_count: int = 0, ack_timeout_seconds: int = 0,
                  steps: Sequence[StepData] = ()) -> EscalationPolicy:
    """Add a policy with its steps."""
    policy = EscalationPolicy(organization=organization, name=name.strip(), description=description,
                              repeat_count=repeat_count, ack_timeout_seconds=ack_timeout_seconds)
    policy.full_clean()
    _save_policy(policy)
    _write_steps(policy, steps)
    record_event(action="escalation.policy_created", actor=actor, organization=organization, target=policy,
                 after=policy_snapshot(policy))
    return policy


@transaction.atomic
def update_policy(*, policy: EscalationPolicy, actor: Any, name: str | None = None,
                  description: str | None = None, repeat_count: int | None = None,
                  ack_timeout_seconds: int | None = None, steps: Sequence[StepData] | None = None) -> EscalationPolicy:
    """Change a policy; ``steps``, when given, replace all of its steps at once (running escalations read
    the steps at each step's time)."""
    policy = EscalationPolicy.objects.select_for_update().get(pk=policy.pk)
    before = policy_snapshot(policy)
    for attr, value in (("name", name.strip() if name is not None else None), ("description", description),
                        ("repeat_count", repeat_count), ("ack_timeout_seconds", ack_timeout_seconds)):
        if value is not None:
            setattr(policy, attr, value)
    policy.full_clean()
    _save_policy(policy)
    if steps is not None:
        _write_steps(policy, steps)
    after = policy_snapshot(policy)
    record_update(action="escalation.policy_updated", actor=actor, organization=policy.organization_id,
                  target=policy, before=before, after=after)
    return policy


@transaction.atomic
def delete_policy(*, policy: EscalationPolicy, actor: Any) -> None:
    """Remove a policy, its steps and the rules' routes to it (running escalations end at their next step)."""
    record_event(action="escalation.policy_deleted", actor=actor, organization=policy.organization_id,
                 target=policy, before=policy_snapshot(policy), after=None)
    policy.delete()


def _route_snapshot(route: RulePolicy) -> dict[str, Any]:
    return {"rule": str(route.rule.public_id), "policy": str(route.policy.public_id)}


@transaction.atomic
def route_rule(*, rule: AlertRule, policy: EscalationPolicy, actor: Any) -> RulePolicy:
    """Point ``rule`` at ``policy`` (replacing its previous policy); new firings escalate through it."""
    if rule.organization_id != policy.organization_id:
        raise ValidationError({"policy": "No such policy."})
    route = RulePolicy.objects.select_for_update().filter(rule=rule).first()
    if route is None:
        try:
            with transaction.atomic():
                route = RulePolicy.objects.create(organization_id=rule.organization_id, rule=rule, policy=policy)
        except IntegrityError as exc:
            raise ValidationError({"rule": "This rule already has an escalation policy."}) from exc
        record_event(action="escalation.route_created", actor=actor, organization=rule.organization_id,
                     target=route, after=_route_snapshot(route))
        return route
    before = _route_snapshot(route)
    route.policy = policy
    route.save(update_fields=["policy", "updated_at"])
    record_update(action="escalation.route_updated", actor=actor, organization=rule.organization_id,
                  target=route, before=before, after=_route_snapshot(route))
    return route


@transaction.atomic
def unroute_rule(*, route: RulePolicy, actor: Any) -> None:
    """The rule no longer escalates (running escalations go on until they end)."""
    record_event(action="escalation.route_deleted", actor=actor, organization=route.organization_id, target=route,
                 before=_route_snapshot(route), after=None)
    route.delete()


# --- contact methods -------------------------------------------------------------------------------


def _contact_snapshot(method: ContactMethod) -> dict[str, Any]:
    return {**snapshot(method, exclude=["channel", "verification_sent_at", "verified_at"]),
            "user": method.user.get_username()}


def _verify_or_ask(method: ContactMethod, actor: Any, *, destination_changed: bool, was_verified: bool) -> None:
    """After a write: a method an admin marked verified records when; a new or moved, unverified, enabled
    one is sent its verification link (audited on its own row, so the log says a message went out)."""
    if method.verified and not was_verified:
        ContactMethod.objects.filter(pk=method.pk).update(verified_at=timezone.now())
    elif not method.verified and method.enabled and destination_changed:
        notification_id = verification.queue_verification(method)
        record_event(action="escalation.contact_verification_sent", actor=actor,
                     organization=method.organization_id, target=method,
                     changes={"notification": [None, notification_id]})


def _check_contact(method: ContactMethod) -> None:
    if method.kind == ContactKind.EMAIL:
        if not method.address:
            raise ValidationError({"address": "An email contact method needs an address."})
        method.url = ""
    else:
        if not method.url:
            raise ValidationError({"url": f"A {method.kind} contact method needs a url."})
        method.address = ""
    method.full_clean(exclude=["organization", "user", "channel"])


def _sync_channel(method: ContactMethod) -> None:
    """The escalation-managed channel the outbox delivers this method's pages through."""
    channel = method.channel or NotificationChannel(organization_id=method.organization_id,
                                                    name=f"contact:{method.public_id}", rate_limit_per_minute=0)
    # Hidden from the channels API, pages, rule choices and admin edits: a person's private address.
    channel.managed_by = MANAGED_BY
    channel.kind, channel.url, channel.address, channel.enabled = (method.kind, method.url, method.address,
                                                                   method.enabled)
    channel.save()
    method.channel = channel


@transaction.atomic
def create_contact_method(*, organization: Organization, user: Any, kind: str, actor: Any, address: str = "",
                          url: str = "", delay_seconds: int = 0, enabled: bool = True,
                          verified: bool = False) -> ContactMethod:
    """Add a way to page ``user`` (a member of ``organization``) ``delay_seconds`` after they are paged."""
    check_members(organization, [user], field_name="user")
    method = ContactMethod(organization=organization, user=user, kind=kind, address=address, url=url,
                           delay_seconds=delay_seconds, enabled=enabled, verified=verified)
    _check_contact(method)
    _sync_channel(method)
    method.save()
    record_event(action="escalation.contact_created", actor=actor, organization=organization, target=method,
                 after=_contact_snapshot(method))
    _verify_or_ask(method, actor, destination_changed=True, was_verified=False)
    return method


@transaction.atomic
def update_contact_method(*, method: ContactMethod, actor: Any, **fields: Any) -> ContactMethod:
    """Change a contact method (kind, address, url, delay_seconds, enabled, verified) and its channel."""
    method = ContactMethod.objects.select_for_update(of=("self",)).select_related("user", "channel").get(pk=method.pk)
    before = _contact_snapshot(method)
    old_destination = (method.kind, method.destination)
    for name in ("kind", "address", "url", "delay_seconds", "enabled", "verified"):
        if name in fields:
            setattr(method, name, fields[name])
    _check_contact(method)
    moved = (method.kind, method.destination) != old_destination
    if moved and "verified" not in fields:
        method.verified = False  # a new destination is not confirmed yet
    _sync_channel(method)
    method.save()
    after = _contact_snapshot(method)
    record_update(action="escalation.contact_updated", actor=actor, organization=method.organization_id,
                  target=method, before=before, after=after)
    _verify_or_ask(method, actor, destination_changed=moved, was_verified=before["verified"])
    return method


@transaction.atomic
def delete_contact_method(*, method: ContactMethod, actor: Any) -> None:
    """Remove a contact method. Its channel is disabled, not deleted, so the ledger of what was sent
    through it stays (Notification rows belong to their channel)."""
    record_event(action="escalation.contact_deleted", actor=actor, organization=method.organization_id,
                 target=method, before=_contact_snapshot(method), after=None)
    if method.channel_id:
        NotificationChannel.objects.filter(pk=method.channel_id).update(enabled=False)
    method.delete()
