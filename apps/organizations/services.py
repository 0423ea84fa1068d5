"""Write use-cases for tenants, members and tokens. Each one is atomic and audited in the same
transaction (Zulip `do_*` actions)."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import record_event, snapshot
from apps.core.roles import Role
from apps.organizations.models import AgentToken, Membership, Organization
from apps.organizations.tokens import generate_token, hash_token, split_prefix, token_matches

# last_used_at is refreshed at most this often, so authenticated ingest does not write a row per request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=5)
# A token's use is audited when it was idle this long (or never used): "token used" without a flood.
USE_AUDIT_INTERVAL = datetime.timedelta(hours=1)


@transaction.atomic
def create_organization(*, name: str, slug: str, actor: Any, plan: str = Organization.Plan.FREE,
                        owner: AbstractBaseUser | None = None) -> Organization:
    """Create a tenant, optionally with its first owner."""
    organization = Organization.objects.create(name=name, slug=slug, plan=plan)
    record_event(action="organization.created", actor=actor, organization=organization, target=organization,
                 after=snapshot(organization))
    if owner is not None:
        add_member(organization=organization, user=owner, role=Role.OWNER, actor=actor)
    return organization


@transaction.atomic
def add_member(*, organization: Organization, user: AbstractBaseUser, role: str, actor: Any) -> Membership:
    membership = Membership.objects.create(organization=organization, user=user, role=role)
    record_event(action="membership.created", actor=actor, organization=organization, target=membership,
                 after=snapshot(membership))
    return membership


@transaction.atomic
def change_role(*, membership: Membership, role: str, actor: Any) -> Membership:
    before = snapshot(membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    record_event(action="membership.updated", actor=actor, organization=membership.organization_id,
                 target=membership, before=before, after=snapshot(membership))
    return membership


@transaction.atomic
def remove_member(*, membership: Membership, actor: Any) -> None:
    record_event(action="membership.deleted", actor=actor, organization=membership.organization_id,
                 target=membership, before=snapshot(membership))
    membership.delete()


@transaction.atomic
def issue_token(*, organization: Organization, name: str, actor: Any, scope: str = AgentToken.Scope.WRITE,
                expires_at: datetime.datetime | None = None) -> tuple[AgentToken, str]:
    """Create a token; returns (row, plaintext). The plaintext exists only in this return value."""
    plaintext, prefix = generate_token()
    token = AgentToken.objects.create(
        organization=organization, name=name, prefix=prefix, token_hash=hash_token(plaintext), scope=scope,
        expires_at=expires_at, created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record_event(action="token.created", actor=actor, organization=organization, target=token,
                 after=snapshot(token))
    return token, plaintext


@transaction.atomic
def revoke_token(*, token: AgentToken, actor: Any) -> AgentToken:
    """Revoke once; a second revoke is a no-op (and not audited twice)."""
    updated = AgentToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    if updated:
        record_event(action="token.revoked", actor=actor, organization=token.organization_id, target=token,
                     changes={"revoked_at": [None, token.revoked_at.isoformat()]})
    return token


def authenticate_token(plaintext: str) -> AgentToken | None:
    """The usable token for `plaintext`, or None. Refreshes last_used_at coarsely and audits use after
    an idle period; both are guarded updates so concurrent requests write once."""
    prefix = split_prefix(plaintext)
    if prefix is None:
        return None
    token = _token_by_prefix(prefix)
    if token is None or not token_matches(plaintext, token.token_hash):
        return None
    now = timezone.now()
    if token.is_revoked or token.is_expired(now) or not token.organization.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        _touch_token(token, now)
    return token


def _token_by_prefix(prefix: str) -> AgentToken | None:
    """The token with its organization: one query on the unique prefix index. Every API request runs it, so
    the SQL is built once per process and the rows become instances with ``from_db``: the ORM's compile and
    select_related population took ~1.1 ms of a 1.4 ms check (bench/query.py, q1 target 5 ms)."""
    global _TOKEN_SQL
    token_fields = AgentToken._meta.concrete_fields
    org_fields = Organization._meta.concrete_fields
    if _TOKEN_SQL is None:
        columns = [f't."{f.column}"' for f in token_fields] + [f'o."{f.column}"' for f in org_fields]
        _TOKEN_SQL = (f"SELECT {', '.join(columns)} FROM {AgentToken._meta.db_table} AS t "  # noqa: S608
                      f"JOIN {Organization._meta.db_table} AS o ON o.id = t.organization_id WHERE t.prefix = %s")
    with connection.cursor() as cursor:
        cursor.execute(_TOKEN_SQL, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_fields)
    token = AgentToken.from_db(connection.alias, [f.attname for f in token_fields], row[:split])
    organization = Organization.from_db(connection.alias, [f.attname for f in org_fields], row[split:])
    AgentToken.organization.field.set_cached_value(token, organization)
    return token


_TOKEN_SQL: str | None = None


def _touch_token(token: AgentToken, now: datetime.datetime) -> None:
    previous = token.last_used_at
    with transaction.atomic():
        claimed = AgentToken.objects.filter(pk=token.pk, last_used_at=previous).update(last_used_at=now)
        if claimed and (previous is None or now - previous >= USE_AUDIT_INTERVAL):
            record_event(action="token.used", actor=token, organization=token.organization_id, target=token,
                         changes={"last_used_at": [previous.isoformat() if previous else None, now.isoformat()]})
    token.last_used_at = now
