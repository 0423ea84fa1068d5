"""Alert configuration: rules and notification channels. The API, the admin and the product's default rules
all write through these functions, so every change is validated the same way (``validate_rule`` /
``validate_channel``) and audited in its own transaction.

Errors are Django ``ValidationError``s keyed by *model* field names (``label_matchers``, ``window_seconds``);
the API renames them to its own names. A changed rule is due at once (``next_evaluation_at = now``), so the
evaluator's 2-second beat tick picks it up within one tick."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from apps.alerts.choices import ChannelKind, Comparator, RuleKind
from apps.alerts.models import Alert, AlertRule, NotificationChannel
from apps.alerts.models.channels import new_signing_secret
from apps.alerts.services import lifecycle
from apps.audit.services import record_event, record_update, snapshot
from apps.metrics.ingest.validation import forbidden_char, storable_text_problem
from apps.metrics.read.params import QueryError
from apps.metrics.read.select import parse_matchers

#: Fields a caller may set on a rule (channels are passed separately, as channel objects).
RULE_FIELDS = (
    "name", "description", "enabled", "kind", "metric", "label_matchers", "host_environment", "host_tags",
    "host_names", "reducer", "window_seconds", "comparator", "critical", "warning", "for_seconds",
    "resolve_threshold", "keep_firing_for_seconds", "absence_seconds", "anomaly_method", "anomaly_k",
    "training_seconds", "seasonal", "labels", "summary_template", "description_template",
    "repeat_interval_seconds", "group_by", "evaluation_interval_seconds",
)
CHANNEL_FIELDS = ("name", "kind", "url", "address", "headers", "enabled", "rate_limit_per_minute")

DAY = 86400
#: Upper bounds of the rule's durations (seconds). Windows longer than a week would read rollups of weeks
#: on every evaluation; nobody pages on that.
MAX_WINDOW_SECONDS = 7 * DAY
MAX_FOR_SECONDS = 7 * DAY
MAX_KEEP_FIRING_FOR_SECONDS = 7 * DAY
MAX_ABSENCE_SECONDS = 30 * DAY
MIN_TRAINING_SECONDS = 3600
MAX_TRAINING_SECONDS = 90 * DAY
MAX_REPEAT_INTERVAL_SECONDS = 30 * DAY
MAX_EVALUATION_INTERVAL_SECONDS = 3600
MAX_RATE_LIMIT_PER_MINUTE = 10_000

#: Labels the lifecycle sets on every alert itself; a rule's own labels may not override them.
RESERVED_ALERT_LABELS = frozenset({"alertname", "severity"})
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# RFC 9110 token: what a header name may be.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers delivery sets itself (body framing, signature, idempotency): a channel may not replace them.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection",
                              "idempotency-key", "x-idempotency-key"})
RESERVED_HEADER_PREFIX = "x-fiberstack-"

# Rule columns the evaluator maintains: left out of audit diffs (they change on every tick).
_RULE_RUNTIME_FIELDS = ("next_evaluation_at", "last_evaluated_at", "last_error", "last_error_at",
                        "consecutive_errors")


# --- audit snapshots ---------------------------------------------------------------------------------


def rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    """The rule's settings for the audit diff, its channels as public ids (a many-to-many the plain
    snapshot does not see)."""
    data = snapshot(rule, exclude=_RULE_RUNTIME_FIELDS)
    data["channels"] = sorted(str(pk) for pk in rule.channels.values_list("public_id", flat=True))
    return data


def _fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def channel_snapshot(channel: NotificationChannel) -> dict[str, Any]:
    """The channel's settings for the audit diff. Never the signing secret; header values (often a
    receiver's credentials) only as fingerprints, so the diff still shows that one changed."""
    data = snapshot(channel, exclude=("signing_secret",))
    data["headers"] = {name: _fingerprint(str(value)) for name, value in sorted((channel.headers or {}).items())}
    return data


# --- validation --------------------------------------------------------------------------------------


class _Problems:
    """Collects problems per field so one answer names every bad field, not only the first."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _django_errors(problems: _Problems, exc: ValidationError) -> None:
    for field, messages in exc.message_dict.items():
        for message in messages:
            problems.add(field, message)


def _check_range(problems: _Problems, field: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        problems.add(field, f"Must be between {low} and {high} seconds, not {value}.")


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_label_names(problems: _Problems, field: str, names: Iterable[Any]) -> None:
    for name in names:
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
            problems.add(field, f"{name!r} is not a label name (letters, digits and _, not starting with a digit).")


def _check_string_map(problems: _Problems, field: str, value: Any) -> None:
    if not isinstance(value, dict):
        problems.add(field, "Must be an object of names to string values.")
        return
    for key, item in value.items():
        if not isinstance(item, str):
            problems.add(field, f"The value of {key!r} must be a string.")
        elif forbidden_char(item):
            problems.add(field, f"The value of {key!r} {forbidden_char(item)}.")


def _check_matchers(problems: _Problems, text: str) -> None:
    """Parse with the query API's own parser (one syntax everywhere); regexes also go past PostgreSQL,
    which the evaluator runs them on and which refuses some that RE2 accepts (``(?P<name>x)``)."""
    if not text:
        return
    bad = storable_text_problem(text)
    if bad:
        problems.add("label_matchers", f"The matchers {bad}.")
        return
    try:
        matchers = parse_matchers(text, "labels")
    except QueryError as exc:
        problems.add("label_matchers", exc.message)
        return
    for matcher in matchers:
        if matcher.op not in ("=~", "!~"):
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT '' ~ %s", [f"^(?:{matcher.value})$"])
        except DatabaseError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "rejected by the database"
            problems.add("label_matchers", f"invalid regular expression for {matcher.label}: {reason}")


def _firing_thresholds(rule: AlertRule) -> list[float]:
    return [value for value in (rule.warning, rule.critical) if value is not None]


def _check_thresholds(problems: _Problems, rule: AlertRule) -> None:
    for field in ("critical", "warning", "resolve_threshold", "anomaly_k"):
        value = getattr(rule, field)
        if value is not None and not _is_finite_number(value):
            problems.add(field, "Must be a finite number.")
    if problems.errors:
        return
    if rule.kind == RuleKind.THRESHOLD and rule.critical is None and rule.warning is None:
        problems.add("critical", "A threshold rule needs a critical or a warning threshold (or both).")
    upward = rule.comparator in (Comparator.GT, Comparator.GE)
    downward = rule.comparator in (Comparator.LT, Comparator.LE)
    if rule.warning is not None and rule.critical is not None:
        if upward and not rule.warning < rule.critical:
            problems.add("warning", f"With {rule.comparator!s} the warning threshold must be below the critical "
                                    f"one ({rule.warning:g} is not below {rule.critical:g}).")
        if downward and not rule.warning > rule.critical:
            problems.add("warning", f"With {rule.comparator!s} the warning threshold must be above the critical "
                                    f"one ({rule.warning:g} is not above {rule.critical:g}).")
        if rule.comparator in (Comparator.EQ, Comparator.NE) and rule.warning == rule.critical:
            problems.add("warning", "The warning and critical thresholds are equal: keep only critical.")
    firing = _firing_thresholds(rule)
    if rule.resolve_threshold is not None and firing:
        if upward and rule.resolve_threshold > min(firing):
            problems.add("resolve_threshold", f"With {rule.comparator!s} the resolve threshold must be at most the "
                                              f"lowest firing threshold ({min(firing):g}).")
        if downward and rule.resolve_threshold < max(firing):
            problems.add("resolve_threshold", f"With {rule.comparator!s} the resolve threshold must be at least "
                                              f"the highest firing threshold ({max(firing):g}).")


def validate_rule(rule: AlertRule, *, channels: Iterable[NotificationChannel] | None = None) -> None:
    """Raise ValidationError (keyed by model field names) unless ``rule`` is a rule the evaluator can run:
    field types and choices, the kind's required settings, thresholds ordered as the comparator reads them,
    matchers the query API and PostgreSQL accept, channels of the rule's own organization."""
    problems = _Problems()
    try:
        rule.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        _django_errors(problems, exc)
    rule.name = rule.name.strip()
    if not rule.name:
        problems.add("name", "This field cannot be blank.")
    for field in ("name", "metric", "host_environment"):
        bad = forbidden_char(getattr(rule, field) or "")
        if bad:
            problems.add(field, f"The value {bad}.")
    for field in ("description", "summary_template", "description_template"):
        bad = storable_text_problem(getattr(rule, field) or "")
        if bad:
            problems.add(field, f"The text {bad}.")
    if rule.name and AlertRule.objects.filter(organization_id=rule.organization_id, name=rule.name).exclude(
            pk=rule.pk).exists():
        problems.add("name", f"A rule named {rule.name!r} already exists in this organization.")

    if rule.kind == RuleKind.EXTERNAL and not rule.system_key:
        problems.add("kind", "External rules belong to integrations: create one with POST /api/v1/integrations.")
    if rule.kind in (RuleKind.THRESHOLD, RuleKind.ANOMALY) and not rule.metric:
        problems.add("metric", f"A {rule.kind} rule needs a metric.")
    if rule.kind == RuleKind.ABSENCE and not rule.absence_seconds:
        problems.add("absence_seconds", "An absence rule needs absence_seconds (how long without a sample).")
    _check_range(problems, "window_seconds", rule.window_seconds, 1, MAX_WINDOW_SECONDS)
    _check_range(problems, "for_seconds", rule.for_seconds, 0, MAX_FOR_SECONDS)
    _check_range(problems, "keep_firing_for_seconds", rule.keep_firing_for_seconds, 0, MAX_KEEP_FIRING_FOR_SECONDS)
    _check_range(problems, "absence_seconds", rule.absence_seconds, 1, MAX_ABSENCE_SECONDS)
    _check_range(problems, "repeat_interval_seconds", rule.repeat_interval_seconds, 0, MAX_REPEAT_INTERVAL_SECONDS)
    _check_range(problems, "evaluation_interval_seconds", rule.evaluation_interval_seconds, 1,
                 MAX_EVALUATION_INTERVAL_SECONDS)
    if rule.kind == RuleKind.ANOMALY:
        _check_range(problems, "training_seconds", rule.training_seconds, MIN_TRAINING_SECONDS, MAX_TRAINING_SECONDS)
        if rule.seasonal and (rule.training_seconds or 0) < 7 * DAY:
            problems.add("seasonal", "A seasonal baseline compares with previous weeks: training_seconds must be "
                                     f"at least {7 * DAY} (one week).")
        if _is_finite_number(rule.anomaly_k) and rule.anomaly_k <= 0:
            problems.add("anomaly_k", "Must be greater than 0.")
    _check_thresholds(problems, rule)
    if "label_matchers" not in problems.errors:
        _check_matchers(problems, rule.label_matchers)

    if isinstance(rule.labels, dict):
        _check_label_names(problems, "labels", rule.labels)
        reserved = sorted(RESERVED_ALERT_LABELS & set(rule.labels))
        if reserved:
            problems.add("labels", f"{', '.join(reserved)} is set on every alert by FiberStack and cannot be a "
                                   "rule label.")
    _check_string_map(problems, "labels", rule.labels)
    _check_string_map(problems, "host_tags", rule.host_tags)
    if not isinstance(rule.group_by, list):
        problems.add("group_by", "Must be a list of label names.")
    else:
        _check_label_names(problems, "group_by", rule.group_by)
    if not isinstance(rule.host_names, list) or not all(isinstance(h, str) and h.strip() for h in rule.host_names):
        problems.add("host_names", "Must be a list of host names.")

    for channel in channels or ():
        if channel.organization_id != rule.organization_id:
            problems.add("channels", f"No such channel in this organization: {channel.public_id}.")
        elif channel.managed_by:
            # Someone's private contact address (or another app's channel): not for rules to broadcast to.
            problems.add("channels", f"The channel {channel.public_id} is managed by {channel.managed_by} and "
                                     "cannot be used by a rule.")
    problems.raise_if_any()


def _check_headers(problems: _Problems, headers: Any) -> None:
    if not isinstance(headers, dict):
        problems.add("headers", "Must be an object of header names to string values.")
        return
    for name, value in headers.items():
        lowered = str(name).lower()
        if not _HEADER_NAME.fullmatch(str(name)):
            problems.add("headers", f"{name!r} is not a valid header name.")
        elif lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIX):
            problems.add("headers", f"{name} is set by FiberStack on every delivery and cannot be overridden.")
        if not isinstance(value, str):
            problems.add("headers", f"The value of {name!r} must be a string.")
        elif forbidden_char(value.replace("\t", " ")):
            problems.add("headers", f"The value of {name!r} {forbidden_char(value)}.")


def validate_channel(channel: NotificationChannel) -> None:
    """Raise ValidationError (keyed by model field names) unless ``channel`` can be delivered to: webhook
    and slack need an http(s) url, email an address; headers are for webhooks and cannot replace the
    ones delivery sets (signature, idempotency key, body framing)."""
    problems = _Problems()
    try:
        channel.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        _django_errors(problems, exc)
    channel.name = channel.name.strip()
    if not channel.name:
        problems.add("name", "This field cannot be blank.")
    elif forbidden_char(channel.name):
        problems.add("name", f"The value {forbidden_char(channel.name)}.")
    elif NotificationChannel.objects.filter(organization_id=channel.organization_id, name=channel.name).exclude(
            pk=channel.pk).exists():
        problems.add("name", f"A channel named {channel.name!r} already exists in this organization.")
    if channel.kind in (ChannelKind.WEBHOOK, ChannelKind.SLACK):
        if not channel.url:
            problems.add("url", f"A {channel.kind} channel needs a url.")
        elif not channel.url.lower().startswith(("http://", "https://")):
            problems.add("url", "The url must start with http:// or https://.")
        if channel.address:
            problems.add("address", f"A {channel.kind} channel has no address; it posts to its url.")
    if channel.kind == ChannelKind.EMAIL:
        if not channel.address:
            problems.add("address", "An email channel needs an address.")
        if channel.url:
            problems.add("url", "An email channel has no url; it sends to its address.")
    if channel.headers and channel.kind != ChannelKind.WEBHOOK:
        problems.add("headers", "Only webhook channels send extra headers.")
    _check_headers(problems, channel.headers)
    if channel.rate_limit_per_minute is not None and channel.rate_limit_per_minute > MAX_RATE_LIMIT_PER_MINUTE:
        problems.add("rate_limit_per_minute", f"Must be at most {MAX_RATE_LIMIT_PER_MINUTE} (0 = unlimited).")
    problems.raise_if_any()


def _save(instance: AlertRule | NotificationChannel) -> None:
    """Save, turning a name taken by a concurrent request (after our check) into the same 400 as the check."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        if "unique_org_name" in str(exc):
            raise ValidationError({"name": f"{instance.name!r} is already taken in this organization."}) from exc
        raise


def _refuse_unknown(function: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise TypeError(f"{function}() got unexpected fields: {', '.join(sorted(unknown))}")


# --- rules -------------------------------------------------------------------------------------------


@transaction.atomic
def create_rule(*, organization: Any, actor: Any, channels: Iterable[NotificationChannel] = (),
                **fields: Any) -> AlertRule:
    """Add a rule. It is due at once (``next_evaluation_at = now``), so it takes effect on the next beat tick."""
    _refuse_unknown("create_rule", fields, RULE_FIELDS)
    channels = list(channels)
    rule = AlertRule(organization=organization, **fields)
    validate_rule(rule, channels=channels)
    rule.next_evaluation_at = timezone.now()
    _save(rule)
    rule.channels.set(channels)
    record_event(action="alert_rule.created", actor=actor, organization=organization, target=rule,
                 after=rule_snapshot(rule))
    return rule


@transaction.atomic
def update_rule(*, rule: AlertRule, actor: Any, channels: Iterable[NotificationChannel] | None = None,
                **changes: Any) -> AlertRule:
    """Change a rule (``channels=None`` keeps its channels). A system rule (``system_key``) may be tuned or
    disabled but keeps its kind. The rule is due again at once, and its error streak starts over, so the
    evaluator's backoff does not delay a fixed rule."""
    _refuse_unknown("update_rule", changes, RULE_FIELDS)
    locked = AlertRule.objects.select_for_update().get(pk=rule.pk)
    before = rule_snapshot(locked)
    if locked.system_key and "kind" in changes and changes["kind"] != locked.kind:
        raise ValidationError({"kind": f"The kind of the system rule {locked.system_key!r} cannot change; "
                                       "tune or disable it instead."})
    for field, value in changes.items():
        setattr(locked, field, value)
    new_channels = list(channels) if channels is not None else None
    validate_rule(locked, channels=new_channels)
    locked.next_evaluation_at = timezone.now()
    locked.consecutive_errors = 0
    _save(locked)
    if new_channels is not None:
        locked.channels.set(new_channels)
    if before["enabled"] and not locked.enabled:
        _close_open_alerts(locked, actor=actor)
    after = rule_snapshot(locked)
    record_update(action="alert_rule.updated", actor=actor, organization=locked.organization_id,
                  target=locked, before=before, after=after)
    rule.__dict__.update(locked.__dict__)
    rule._prefetched_objects_cache = {}  # channels may have changed under a prefetch the caller holds
    return rule


class SystemRuleError(ValidationError):
    """A system rule (the product's per-organization defaults, e.g. host down) cannot be deleted."""


@transaction.atomic
def delete_rule(*, rule: AlertRule, actor: Any) -> None:
    """Delete a rule with its alerts and their history. System rules are refused: disable them instead."""
    if rule.system_key:
        raise SystemRuleError({"system_key": f"{rule.name!r} is a system rule ({rule.system_key}): it cannot be "
                                             "deleted; disable it (enabled=false) or tune it instead."})
    _close_open_alerts(rule, actor=actor)
    record_event(action="alert_rule.deleted", actor=actor, organization=rule.organization_id, target=rule,
                 before=rule_snapshot(rule))
    rule.delete()


def _close_open_alerts(rule: AlertRule, *, actor: Any) -> None:
    """A rule that stops being evaluated (disabled or deleted) resolves its open alerts first, so channels
    told an alert fired are told it resolved (house rule); the outbox rows outlive a deleted rule."""
    for alert in Alert.objects.open().filter(rule=rule):
        lifecycle.resolve_alert(alert=alert, actor=actor)


# --- channels ----------------------------------------------------------------------------------------


@transaction.atomic
def create_channel(*, organization: Any, actor: Any, **fields: Any) -> NotificationChannel:
    """Add a channel with a fresh signing secret (receivers verify webhook signatures with it)."""
    _refuse_unknown("create_channel", fields, CHANNEL_FIELDS)
    channel = NotificationChannel(organization=organization, **fields)
    validate_channel(channel)
    _save(channel)
    record_event(action="notification_channel.created", actor=actor, organization=organization, target=channel,
                 after=channel_snapshot(channel))
    return channel


_KIND_ONLY_FIELDS: Mapping[str, tuple[str, ...]] = {
    ChannelKind.WEBHOOK: ("address",),
    ChannelKind.SLACK: ("address", "headers"),
    ChannelKind.EMAIL: ("url", "headers"),
}
_EMPTY: Mapping[str, Any] = {"address": "", "url": "", "headers": {}}


@transaction.atomic
def update_channel(*, channel: NotificationChannel, actor: Any, **changes: Any) -> NotificationChannel:
    """Change a channel. Switching its kind clears the settings the new kind has no use for (an email
    channel's address when it becomes a webhook) unless the change sets them itself."""
    _refuse_unknown("update_channel", changes, CHANNEL_FIELDS)
    locked = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    before = channel_snapshot(locked)
    new_kind = changes.get("kind", locked.kind)
    if new_kind != locked.kind:
        for field in _KIND_ONLY_FIELDS.get(new_kind, ()):
            changes.setdefault(field, _EMPTY[field])
    for field, value in changes.items():
        setattr(locked, field, value)
    validate_channel(locked)
    _save(locked)
    after = channel_snapshot(locked)
    record_update(action="notification_channel.updated", actor=actor, organization=locked.organization_id,
                  target=locked, before=before, after=after)
    channel.__dict__.update(locked.__dict__)
    return channel


@transaction.atomic
def rotate_channel_secret(*, channel: NotificationChannel, actor: Any) -> NotificationChannel:
    """Give the channel a new signing secret (the old one stops verifying with the next delivery). The
    audit row says that it changed, never what it is."""
    locked = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    locked.signing_secret = new_signing_secret()
    locked.save(update_fields=["signing_secret", "updated_at"])
    record_event(action="notification_channel.secret_rotated", actor=actor, organization=locked.organization_id,
                 target=locked, changes={"signing_secret": "rotated"})
    channel.__dict__.update(locked.__dict__)
    return channel


@transaction.atomic
def delete_channel(*, channel: NotificationChannel, actor: Any) -> None:
    """Delete a channel. Rules that used it keep working without it (the audit row lists them); its
    notifications and delivery ledger go with it."""
    before = channel_snapshot(channel)
    before["rules"] = sorted(str(pk) for pk in channel.rules.values_list("public_id", flat=True))
    record_event(action="notification_channel.deleted", actor=actor, organization=channel.organization_id,
                 target=channel, before=before)
    channel.delete()
