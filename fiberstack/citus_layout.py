"""Where every table goes on a Citus cluster (docs/scaling.md, "Scaling out with Citus"): the one
classification that the doc describes and ``tests/core/test_citus_schema.py`` checks against the migrated
schema (pg_catalog), so the two cannot drift.

* **Distributed**, in one of two co-location groups: ``tenant`` (by ``organization_id``: everything an
  organization owns, so a tenant's joins and transactions stay on one node) and ``series`` (the series
  catalogue by ``id`` and everything keyed by ``series_id``: raw samples, compressed chunks, rollup tiers,
  so ingest, rollups and reads of one series stay on one node while a big tenant's series spread).
* **Reference**: small tables every node needs to join against (organizations, users, permissions),
  copied to every node.
* **Local**: coordinator-only bookkeeping that no distributed query joins (sessions, migrations, the audit
  log, the rollup and cache state rows).

Rules for distributed tables (what Citus enforces or cannot do efficiently): the distribution column
exists and is NOT NULL; every primary key, unique constraint and unique index includes it; a foreign key
between distributed tables stays inside one group and includes the distribution column on both sides; a
distributed table may reference reference tables only; a reference table references only reference tables;
a local table references no distributed table.

Today's schema breaks some rules; ``EXCEPTIONS`` lists each violation once, grouped by why it exists and
what fixes it. They are the work before moving to Citus (docs/scaling.md); the test fails on any violation
not listed here, and on any listed one that no longer happens (so the list only shrinks)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

TENANT = "tenant"
SERIES = "series"


@dataclass(frozen=True, slots=True)
class Distributed:
    column: str
    group: str


_TENANT_TABLES = (
    "organizations_agenttoken", "organizations_membership",
    "hosts_host", "hosts_service", "hosts_servicedependency",
    "metrics_metricfamily",
    "logs_entry", "logs_event", "logs_logretention",
    "alerts_alert", "alerts_alertevent", "alerts_alertgroup", "alerts_alertrule", "alerts_alertrule_channels",
    "alerts_deliveryattempt", "alerts_integration", "alerts_maintenancewindow", "alerts_maintenancewindow_hosts",
    "alerts_maintenancewindow_services", "alerts_notification", "alerts_notificationchannel", "alerts_silence",
    "escalation_calendarfeed", "escalation_contactmethod", "escalation_escalationpolicy", "escalation_escalationrun",
    "escalation_escalationstep", "escalation_escalationstep_channels", "escalation_escalationstep_users",
    "escalation_oncallassignment", "escalation_oncallschedule", "escalation_rulepolicy", "escalation_schedulelayer",
    "escalation_schedulelayermember", "escalation_scheduleoverride", "escalation_groupescalationrun",
    "escalation_grouproute",
    "dashboards_saveddashboard",
)
_SERIES_TABLES = ("metrics_sample", "metrics_sample_compressed")

DISTRIBUTED: dict[str, Distributed] = {
    **{table: Distributed("organization_id", TENANT) for table in _TENANT_TABLES},
    "metrics_series": Distributed("id", SERIES),
    **{table: Distributed("series_id", SERIES) for table in _SERIES_TABLES},
}
# Families of tables named by a pattern (fnmatch): every rollup tier, whatever tables its storage uses,
# is keyed by series. A pattern must match at least one table.
DISTRIBUTED_PATTERNS: dict[str, Distributed] = {
    "metrics_rollup_*": Distributed("series_id", SERIES),
}

REFERENCE: dict[str, str] = {
    "organizations_organization": "one row per tenant, read by every request and joined by tenant tables",
    "auth_user": "users belong to several organizations; memberships, assignees and authors point here",
    "auth_group": "Django permissions: small, global",
    "auth_permission": "Django permissions: small, global",
    "auth_group_permissions": "Django permissions: small, global",
    "auth_user_groups": "Django permissions: small, global",
    "auth_user_user_permissions": "Django permissions: small, global",
    "django_content_type": "referenced by permissions and the admin log",
    "otp_totp_totpdevice": "a user's second factor: per user, not per organization",
    "otp_static_staticdevice": "a user's backup codes: per user, not per organization",
    "otp_static_statictoken": "a user's backup codes: per user, not per organization",
}

LOCAL: dict[str, str] = {
    "django_migrations": "schema bookkeeping of the coordinator",
    "django_session": "sign-in sessions: read and written by the web tier only",
    "accounts_usersession": "who is signed in where, next to django_session",
    "django_admin_log": "platform admins' Django admin history",
    "audit_auditevent": "append-only; platform events have no organization (organization_id is nullable)",
    "hosts_cache_epoch": "one row: the cache namespace epoch",
    "metrics_rollupstate": "one row per tier: the rollup job's watermark",
    "metrics_rollupinvalidation": "late-data time ranges for the rollup job, across all series",
    "metrics_rollupquarantine": "buckets the rollup job gave up on, for an operator to look at",
}


@dataclass(frozen=True, slots=True)
class Exceptions:
    """Violations of the rules above that today's schema has, one reason and fix for all of them."""

    why: str
    fix: str
    violations: frozenset[str]


def _keys(tables: tuple[str, ...], *columns: str) -> frozenset[str]:
    return frozenset(f"{table}: {kind}" for table in tables for kind in columns)


_PUBLIC_ID = ("organizations_agenttoken", "organizations_membership", "hosts_host", "hosts_service",
              "hosts_servicedependency", "alerts_alert", "alerts_alertgroup", "alerts_alertrule", "alerts_integration",
              "alerts_maintenancewindow", "alerts_notification", "alerts_notificationchannel", "alerts_silence",
              "escalation_calendarfeed", "escalation_contactmethod", "escalation_escalationpolicy",
              "escalation_oncallschedule", "escalation_rulepolicy", "escalation_schedulelayer",
              "escalation_scheduleoverride", "escalation_grouproute", "dashboards_saveddashboard")
_ID_KEYED = tuple(t for t in _TENANT_TABLES if t not in ("logs_entry", "logs_event"))

EXCEPTIONS: tuple[Exceptions, ...] = (
    Exceptions(
        why="Django's surrogate keys: every model's integer primary key and the public uuid are unique on "
            "their own, without organization_id.",
        fix="composite primary keys (organization_id, id) (Django 5.2 CompositePrimaryKey) and "
            "UNIQUE (organization_id, public_id); lookups by public_id already carry the organization.",
        violations=_keys(_ID_KEYED, "primary key (id)") | _keys(_PUBLIC_ID, "unique (public_id)")
        | frozenset({"metrics_series: unique (public_id)"}),
    ),
    Exceptions(
        why="Foreign keys between tenant tables point at the parent's id alone, not (organization_id, id).",
        fix="composite foreign keys (organization_id, x_id) -> (organization_id, id) once the keys are composite, "
            "or db_constraint=False with integrity kept by the services (each already checks the organization).",
        violations=frozenset({
            "alerts_alert: foreign key (group_id) -> alerts_alertgroup",
            "alerts_alert: foreign key (host_id) -> hosts_host",
            "alerts_alert: foreign key (rule_id) -> alerts_alertrule",
            "alerts_alertevent: foreign key (alert_id) -> alerts_alert",
            "alerts_alertgroup: foreign key (rule_id) -> alerts_alertrule",
            "alerts_alertrule_channels: foreign key (alertrule_id) -> alerts_alertrule",
            "alerts_alertrule_channels: foreign key (notificationchannel_id) -> alerts_notificationchannel",
            "alerts_deliveryattempt: foreign key (notification_id) -> alerts_notification",
            "alerts_integration: foreign key (rule_id) -> alerts_alertrule",
            "alerts_maintenancewindow_hosts: foreign key (host_id) -> hosts_host",
            "alerts_maintenancewindow_hosts: foreign key (maintenancewindow_id) -> alerts_maintenancewindow",
            "alerts_maintenancewindow_services: foreign key (maintenancewindow_id) -> alerts_maintenancewindow",
            "alerts_maintenancewindow_services: foreign key (service_id) -> hosts_service",
            "alerts_notification: foreign key (alert_id) -> alerts_alert",
            "alerts_notification: foreign key (channel_id) -> alerts_notificationchannel",
            "alerts_notification: foreign key (group_id) -> alerts_alertgroup",
            "escalation_contactmethod: foreign key (channel_id) -> alerts_notificationchannel",
            "escalation_escalationrun: foreign key (alert_id) -> alerts_alert",
            "escalation_escalationrun: foreign key (policy_id) -> escalation_escalationpolicy",
            "escalation_escalationstep: foreign key (policy_id) -> escalation_escalationpolicy",
            "escalation_escalationstep: foreign key (schedule_id) -> escalation_oncallschedule",
            "escalation_escalationstep_channels: foreign key (escalationstep_id) -> escalation_escalationstep",
            "escalation_escalationstep_channels: foreign key (notificationchannel_id) -> alerts_notificationchannel",
            "escalation_escalationstep_users: foreign key (escalationstep_id) -> escalation_escalationstep",
            "escalation_oncallassignment: foreign key (alert_id) -> alerts_alert",
            "escalation_oncallassignment: foreign key (group_id) -> alerts_alertgroup",
            "escalation_groupescalationrun: foreign key (group_id) -> alerts_alertgroup",
            "escalation_groupescalationrun: foreign key (lead_alert_id) -> alerts_alert",
            "escalation_groupescalationrun: foreign key (policy_id) -> escalation_escalationpolicy",
            "escalation_groupescalationrun: foreign key (route_id) -> escalation_grouproute",
            "escalation_grouproute: foreign key (policy_id) -> escalation_escalationpolicy",
            "escalation_grouproute: foreign key (rule_id) -> alerts_alertrule",
            "escalation_oncallassignment: foreign key (schedule_id) -> escalation_oncallschedule",
            "escalation_oncallschedule: foreign key (shift_change_channel_id) -> alerts_notificationchannel",
            "escalation_rulepolicy: foreign key (policy_id) -> escalation_escalationpolicy",
            "escalation_rulepolicy: foreign key (rule_id) -> alerts_alertrule",
            "escalation_schedulelayer: foreign key (schedule_id) -> escalation_oncallschedule",
            "escalation_schedulelayermember: foreign key (layer_id) -> escalation_schedulelayer",
            "escalation_scheduleoverride: foreign key (schedule_id) -> escalation_oncallschedule",
            "hosts_service: foreign key (host_id) -> hosts_host",
            "hosts_servicedependency: foreign key (downstream_host_id) -> hosts_host",
            "hosts_servicedependency: foreign key (downstream_service_id) -> hosts_service",
            "hosts_servicedependency: foreign key (upstream_host_id) -> hosts_host",
            "hosts_servicedependency: foreign key (upstream_service_id) -> hosts_service",
        }),
    ),
    Exceptions(
        why="Child tables reach their organization through a parent (HOUSE_STYLE: pure children carry no "
            "organization FK), so they have no distribution column -- nor do their unique keys.",
        fix="add organization_id (NOT NULL, filled from the parent) to each, then the composite keys above.",
        violations=frozenset({
            "alerts_alertrule_channels: no column organization_id",
            "alerts_alertrule_channels: unique (alertrule_id, notificationchannel_id)",
            "alerts_deliveryattempt: no column organization_id",
            "alerts_deliveryattempt: unique (notification_id, number)",
            "alerts_maintenancewindow_hosts: no column organization_id",
            "alerts_maintenancewindow_hosts: unique (maintenancewindow_id, host_id)",
            "alerts_maintenancewindow_services: no column organization_id",
            "alerts_maintenancewindow_services: unique (maintenancewindow_id, service_id)",
            "escalation_escalationstep: no column organization_id",
            "escalation_escalationstep: unique (policy_id, position)",
            "escalation_escalationstep_channels: no column organization_id",
            "escalation_escalationstep_channels: unique (escalationstep_id, notificationchannel_id)",
            "escalation_escalationstep_users: no column organization_id",
            "escalation_escalationstep_users: unique (escalationstep_id, user_id)",
            "escalation_schedulelayer: no column organization_id",
            "escalation_schedulelayer: unique (schedule_id, priority)",
            "escalation_schedulelayermember: no column organization_id",
            "escalation_schedulelayermember: unique (layer_id, position)",
        }),
    ),
    Exceptions(
        why="Keys that are global by design: an agent token's or integration's lookup prefix, a notification's "
            "idempotency key, the one route or run per rule, alert or channel.",
        fix="a token prefix is looked up before the organization is known: keep a small reference table "
            "prefix -> organization_id (or encode the organization in the token) and make these unique per "
            "organization; the one-per-parent keys become (organization_id, parent_id).",
        violations=frozenset({
            "organizations_agenttoken: unique (prefix)",
            "alerts_integration: unique (token_prefix)",
            "alerts_integration: unique (rule_id)",
            "alerts_notification: unique (idempotency_key)",
            "alerts_alert: unique (rule_id, fingerprint)",
            "alerts_alertgroup: unique (rule_id, group_key)",
            "escalation_contactmethod: unique (channel_id)",
            "escalation_escalationrun: unique (alert_id)",
            "escalation_groupescalationrun: unique (group_id)",
            "escalation_oncallassignment: unique (escalation_id, step_index, repeat, username)",
            "escalation_rulepolicy: unique (rule_id)",
            "hosts_service: unique (host_id, name)",
            "hosts_servicedependency: unique (upstream_host_id, upstream_service_id, downstream_host_id, "
            "downstream_service_id)",
        }),
    ),
    Exceptions(
        why="The series catalogue is distributed by its id (co-located with samples and rollups) but is still "
            "unique per (organization, key) and points at its host, which is in the tenant group.",
        fix="resolve series through a hash of (organization_id, key) as the series id (the unique key then is "
            "the distribution column), and drop the database FK to hosts_host (the host is a label; the "
            "hosts service already cleans up series of a deleted host).",
        violations=frozenset({
            "metrics_series: unique (organization_id, key_hash)",
            "metrics_series: foreign key (host_id) -> hosts_host",
        }),
    ),
)


def distributed(table: str) -> Distributed | None:
    """How ``table`` is distributed (by name, else by pattern), or None."""
    if table in DISTRIBUTED:
        return DISTRIBUTED[table]
    return next((spec for pattern, spec in DISTRIBUTED_PATTERNS.items() if fnmatchcase(table, pattern)), None)


def classification(table: str) -> str | None:
    """``distributed``, ``reference``, ``local`` or None for a table this module does not know."""
    if distributed(table) is not None:
        return "distributed"
    if table in REFERENCE:
        return "reference"
    if table in LOCAL:
        return "local"
    return None


def allowed_violations() -> frozenset[str]:
    return frozenset().union(*(group.violations for group in EXCEPTIONS))


def render_markdown() -> str:
    """The classification as docs/scaling.md shows it (the test checks the doc holds exactly this)."""
    groups: dict[str, list[str]] = {}
    for table, spec in [*DISTRIBUTED.items(), *DISTRIBUTED_PATTERNS.items()]:
        groups.setdefault(f"{spec.group}` by `{spec.column}", []).append(table)
    lines = ["| kind | tables |", "|---|---|"]
    for label, tables in groups.items():
        lines.append(f"| distributed, group `{label}` | {', '.join(f'`{t}`' for t in sorted(tables))} |")
    lines.append(f"| reference | {', '.join(f'`{t}`' for t in sorted(REFERENCE))} |")
    lines.append(f"| local (coordinator) | {', '.join(f'`{t}`' for t in sorted(LOCAL))} |")
    lines += ["", "| known violations | why | fix before moving to Citus |", "|---:|---|---|"]
    for group in EXCEPTIONS:
        lines.append(f"| {len(group.violations)} | {group.why} | {group.fix} |")
    return "\n".join(lines)
