"""Integrations: create, change, rotate their token, delete (audited, like every configuration write), and
receive their alerts.

Received alerts go through the lifecycle of our own rules -- ``record_outcomes(rule=integration.rule, ...,
complete=False)``: only the label sets a request names change -- so grouping, silences, maintenance,
inhibition, the notification outbox, the AlertTransition hook (escalation) and resolution behave the same.
Transitions are timed by receipt (``at`` = now), not by the source's ``startsAt``: reminders and escalation
waits count from when FiberStack learnt of the alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.choices import OPEN_STATES, AlertState, IntegrationKind, RuleKind
from apps.alerts.inbound.payloads import DEDUP_LABEL, InboundAlert
from apps.alerts.models import Alert, AlertRule, Integration, NotificationChannel
from apps.alerts.outcomes import Outcome
from apps.alerts.services import config
from apps.alerts.services.lifecycle import fingerprint, identity_labels, record_outcomes
from apps.audit.services import record_event, record_update, snapshot
from apps.metrics.ingest.validation import forbidden_char
from apps.organizations.tokens import generate_token, hash_token, split_prefix, token_matches

#: Rule settings an integration passes on to its rule (the lifecycle reads them there).
RULE_SETTINGS = ("channels", "group_by", "repeat_interval_seconds")
DEFAULT_GROUP_BY = ["alertname"]
SYSTEM_KEY = "integration:{public_id}"


def rule_name(name: str) -> str:
    """The backing rule's name: rule names are unique per organization, and this one says what it is."""
    return f"{name} (integration)"


def integration_snapshot(integration: Integration) -> dict[str, Any]:
    """What the audit log keeps of an integration: never the token hash; the rule's settings by value."""
    data = snapshot(integration, exclude=("token_hash", "last_received_at", "rule"))
    rule = integration.rule
    data.update(rule=str(rule.public_id), group_by=list(rule.group_by or []),
                repeat_interval_seconds=rule.repeat_interval_seconds,
                channels=sorted(str(pk) for pk in rule.channels.values_list("public_id", flat=True)))
    return data


def _check_name(organization_id: int, name: Any, exclude_pk: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "This field cannot be blank."})
    name = name.strip()
    if len(name) > 100:
        raise ValidationError({"name": "Ensure this value has at most 100 characters."})
    if forbidden_char(name):
        raise ValidationError({"name": f"The value {forbidden_char(name)}."})
    if Integration.objects.filter(organization_id=organization_id, name=name).exclude(pk=exclude_pk).exists():
        raise ValidationError({"name": f"An integration named {name!r} already exists in this organization."})
    return name


def _rule_errors(exc: ValidationError) -> ValidationError:
    """The rule's validation errors under the integration's field names (the rule's name is ours)."""
    names = {"name": "name", "group_by": "group_by", "channels": "channels",
             "repeat_interval_seconds": "repeat_interval_seconds"}
    errors: dict[str, list[str]] = {}
    for key, messages in exc.message_dict.items():
        errors.setdefault(names.get(key, "__all__"), []).extend(messages)
    return ValidationError(errors)


def _save_integration(integration: Integration) -> None:
    try:
        with transaction.atomic():
            integration.save()
    except IntegrityError as exc:
        if "unique_org_name" in str(exc):
            raise ValidationError({"name": f"{integration.name!r} is already taken in this organization."}) from exc
        raise


@transaction.atomic
def create_integration(*, organization: Any, actor: Any, name: str, kind: str, enabled: bool = True,
                       channels: Iterable[NotificationChannel] = (), group_by: list[str] | None = None,
                       repeat_interval_seconds: int | None = None) -> tuple[Integration, str]:
    """Add an integration with its external rule and a new token; returns (integration, token). The token
    exists only in this return value (the API shows it once)."""
    name = _check_name(organization.pk, name)
    if kind not in IntegrationKind.values:
        raise ValidationError({"kind": f"Must be one of {', '.join(IntegrationKind.values)}."})
    integration = Integration(organization=organization, name=name, kind=kind, enabled=enabled,
                              created_by=actor if getattr(actor, "is_authenticated", False) and getattr(
                                  actor, "pk", None) else None)
    channels = list(channels)
    rule = AlertRule(organization=organization, name=rule_name(name), kind=RuleKind.EXTERNAL, enabled=enabled,
                     system_key=SYSTEM_KEY.format(public_id=integration.public_id),
                     description=f"Alerts sent in by the {kind} integration {name!r}.",
                     group_by=DEFAULT_GROUP_BY if group_by is None else group_by)
    if repeat_interval_seconds is not None:
        rule.repeat_interval_seconds = repeat_interval_seconds
    try:
        config.validate_rule(rule, channels=channels)
        rule.save()
    except ValidationError as exc:
        raise _rule_errors(exc) from exc
    rule.channels.set(channels)
    plaintext, prefix = generate_token()
    integration.rule, integration.token_prefix, integration.token_hash = rule, prefix, hash_token(plaintext)
    _save_integration(integration)
    record_event(action="integration.created", actor=actor, organization=organization, target=integration,
                 after=integration_snapshot(integration))
    return integration, plaintext


@transaction.atomic
def update_integration(*, integration: Integration, actor: Any, **changes: Any) -> Integration:
    """Change name, enabled or the rule settings (channels, group_by, repeat_interval_seconds). The kind is
    fixed: senders are configured for one body."""
    unknown = set(changes) - {"name", "enabled", "kind", *RULE_SETTINGS}
    if unknown:
        raise TypeError(f"update_integration() got unexpected fields: {', '.join(sorted(unknown))}")
    locked = Integration.objects.select_for_update().select_related("rule").get(pk=integration.pk)
    before = integration_snapshot(locked)
    if "kind" in changes and changes["kind"] != locked.kind:
        raise ValidationError({"kind": "The kind of an integration cannot change; create a new integration."})
    if "name" in changes:
        locked.name = _check_name(locked.organization_id, changes["name"], exclude_pk=locked.pk)
    if "enabled" in changes:
        locked.enabled = bool(changes["enabled"])
    rule_changes: dict[str, Any] = {key: changes[key] for key in ("group_by", "repeat_interval_seconds")
                                    if key in changes}
    rule_changes.update(name=rule_name(locked.name), enabled=locked.enabled)
    try:
        config.update_rule(rule=locked.rule, actor=actor, channels=changes.get("channels"), **rule_changes)
    except ValidationError as exc:
        raise _rule_errors(exc) from exc
    _save_integration(locked)
    after = integration_snapshot(locked)
    record_update(action="integration.updated", actor=actor, organization=locked.organization_id,
                  target=locked, before=before, after=after)
    integration.__dict__.update(locked.__dict__)
    return integration


@transaction.atomic
def rotate_integration_token(*, integration: Integration, actor: Any) -> tuple[Integration, str]:
    """Replace the token (the old one stops working at once); returns (integration, new token)."""
    locked = Integration.objects.select_for_update().get(pk=integration.pk)
    plaintext, prefix = generate_token()
    locked.token_prefix, locked.token_hash, locked.token_rotated_at = prefix, hash_token(plaintext), timezone.now()
    locked.save(update_fields=["token_prefix", "token_hash", "token_rotated_at", "updated_at"])
    record_event(action="integration.token_rotated", actor=actor, organization=locked.organization_id,
                 target=locked, changes={"token_prefix": [integration.token_prefix, prefix]})
    integration.__dict__.update(locked.__dict__)
    return integration, plaintext


@transaction.atomic
def delete_integration(*, integration: Integration, actor: Any) -> None:
    """Delete the integration with its rule, and so its alerts and their history (like deleting a rule)."""
    record_event(action="integration.deleted", actor=actor, organization=integration.organization_id,
                 target=integration, before=integration_snapshot(integration))
    AlertRule.objects.filter(pk=integration.rule_id).delete()


def integration_for_token(plaintext: str) -> Integration | None:
    """The integration whose token this is (with its rule and organization), or None."""
    prefix = split_prefix(plaintext)
    if prefix is None:
        return None
    integration = (Integration.objects.select_related("rule", "organization")
                   .filter(token_prefix=prefix).first())
    if integration is None or not token_matches(plaintext, integration.token_hash):
        return None
    return integration


@dataclass(slots=True)
class ReceiveSummary:
    """What one request did: alerts opened (new or recurring), updated (still open), resolved, and
    resolves ignored because no open alert matched."""

    opened: int = 0
    updated: int = 0
    resolved: int = 0
    ignored: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)


def receive_alerts(*, integration: Integration, alerts: Sequence[InboundAlert], at: dt.datetime | None = None
                   ) -> ReceiveSummary:
    """Apply what a source reported, in one lifecycle call (one transaction, one notification per group
    change however many alerts). Two items for the same alert in one request: the last one counts."""
    at = at or timezone.now()
    rule = integration.rule
    Integration.objects.filter(pk=integration.pk).update(last_received_at=at)
    known = _known_dedup_labels(rule, [a.dedup_key for a in alerts if a.dedup_key])
    items: dict[str, tuple[InboundAlert, dict[str, str]]] = {}
    for item in alerts:
        labels = known.get(item.dedup_key, item.labels) if item.dedup_key else item.labels
        items[fingerprint(identity_labels(rule, labels))] = (item, labels)
    before = {a.fingerprint: a for a in Alert.objects.filter(rule=rule, fingerprint__in=list(items))
              .only("fingerprint", "state", "summary", "description")}
    outcomes = []
    for fp, (item, labels) in items.items():
        existing = before.get(fp)
        summary = item.summary or (existing.summary if existing else "") or labels.get("alertname", rule.name)
        description = item.description if item.description is not None else (
            existing.description if existing else "")
        outcomes.append(Outcome(labels=labels, value=None, severity=item.severity if item.firing else None,
                                summary=summary, description=description))
    touched = {a.fingerprint: a for a in record_outcomes(rule=rule, outcomes=outcomes, at=at, complete=False)}
    summary_ = ReceiveSummary()
    for fp in items:
        old = before[fp].state if fp in before else None
        alert = touched.get(fp)
        new = alert.state if alert is not None else old
        if new in OPEN_STATES and old not in OPEN_STATES:
            summary_.opened += 1
        elif new in OPEN_STATES:
            summary_.updated += 1
        elif new == AlertState.RESOLVED and old in OPEN_STATES:
            summary_.resolved += 1
        else:
            summary_.ignored += 1
        if alert is not None:
            entry = {"id": str(alert.public_id), "fingerprint": fp, "state": new}
            if DEDUP_LABEL in alert.labels and integration.kind == IntegrationKind.GENERIC:
                entry["dedup_key"] = alert.labels[DEDUP_LABEL]
            summary_.alerts.append(entry)
    return summary_


def _known_dedup_labels(rule: AlertRule, keys: list[str]) -> dict[str, dict[str, str]]:
    """A dedup key seen before keeps the labels its alert was opened with (its identity); open alerts
    first, should a race have opened two."""
    if not keys:
        return {}
    found: dict[str, dict[str, str]] = {}
    rows = (Alert.objects.filter(rule=rule, **{f"labels__{DEDUP_LABEL}__in": keys})
            .order_by("-updated_at").values_list("labels", "state"))
    for labels, _state in sorted(rows, key=lambda row: row[1] not in OPEN_STATES):
        key = labels.get(DEDUP_LABEL)
        if key not in found:
            found[key] = {k: v for k, v in labels.items() if k != "severity"}
    return found
