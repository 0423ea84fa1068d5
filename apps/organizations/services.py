"""Write use-cases for tenants, members and tokens. Each one is atomic and audited in the same
transaction (Zulip `do_*` actions). Membership changes from the API, the Django admin and the commands
all come through here, so the owner rules (only owners grant owner; the last owner stays) hold for all."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.audit.services import record_event, snapshot
from apps.core.roles import Role
from apps.core.scopes import normalize_scope
from apps.organizations.live import close_live_sockets_on_commit, membership_group
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


class LastOwnerError(ValidationError):
    """Refused because the change would leave the organization without an owner."""


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}: use one of {', '.join(Role.values)}."})


def _check_owner_grant(acting_role: str | None, *roles: str) -> None:
    """Only owners grant the owner role or change an owner's membership. `acting_role` is the actor's own
    role when a member acts through the API; platform admins (Django admin) and commands pass None."""
    if acting_role is not None and acting_role != Role.OWNER and Role.OWNER in roles:
        raise PermissionDenied("Only an owner can grant the owner role or change an owner's membership.")


def _locked_memberships(organization_id: int) -> dict[int, Membership]:
    """Every membership of the organization, locked (FOR UPDATE, in pk order so two writers cannot
    deadlock) until the transaction ends. Two admins demoting or removing the last two owners at once
    serialize here, and the second one sees the first one's change: PostgreSQL re-reads a locked row
    after the lock is released, so counting owners among these rows is race-free."""
    rows = Membership.objects.select_for_update().filter(organization_id=organization_id).order_by("pk")
    return {m.pk: m for m in rows}


def _locked(membership: Membership) -> tuple[Membership, int]:
    """The current, locked row of `membership` and the number of owners it is counted among."""
    members = _locked_memberships(membership.organization_id)
    current = members.get(membership.pk)
    if current is None:
        raise ValidationError({"member": f"{membership.user} is no longer a member of this organization."})
    return current, sum(1 for m in members.values() if m.role == Role.OWNER)


@transaction.atomic
def add_member(*, organization: Organization, user: AbstractBaseUser, role: str, actor: Any,
               acting_role: str | None = None) -> Membership:
    """Give `user` a role in `organization` (ValidationError if they already have one)."""
    _check_role(role)
    _check_owner_grant(acting_role, role)
    try:
        with transaction.atomic():  # a savepoint: the unique constraint decides a concurrent double add
            membership = Membership.objects.create(organization=organization, user=user, role=role)
    except IntegrityError as exc:
        raise ValidationError({"user": f"{user} is already a member of {organization}."}) from exc
    record_event(action="membership.created", actor=actor, organization=organization, target=membership,
                 after=snapshot(membership))
    return membership


@transaction.atomic
def change_role(*, membership: Membership, role: str, actor: Any, acting_role: str | None = None) -> Membership:
    """Change a member's role; the last owner cannot be demoted. Returns the updated row."""
    _check_role(role)
    current, owners = _locked(membership)
    _check_owner_grant(acting_role, role, current.role)
    if current.role == Role.OWNER and role != Role.OWNER and owners <= 1:
        raise LastOwnerError({"role": f"{current.user} is the last owner of this organization: make another "
                                      "member an owner first."})
    if current.role == role:
        return current
    before = snapshot(current)
    current.role = role
    current.save(update_fields=["role", "updated_at"])
    record_event(action="membership.updated", actor=actor, organization=current.organization_id,
                 target=current, before=before, after=snapshot(current))
    return current


@transaction.atomic
def remove_member(*, membership: Membership, actor: Any, acting_role: str | None = None) -> None:
    """Remove a member; the last owner cannot be removed. The member's open live pages of this organization
    are closed after commit."""
    current, owners = _locked(membership)
    _check_owner_grant(acting_role, current.role)
    if current.role == Role.OWNER and owners <= 1:
        raise LastOwnerError({"member": f"{current.user} is the last owner of this organization: make another "
                                        "member an owner first."})
    record_event(action="membership.deleted", actor=actor, organization=current.organization_id,
                 target=current, before=snapshot(current))
    close_live_sockets_on_commit([membership_group(current.organization_id, current.user_id)])
    current.delete()


@dataclass(frozen=True)
class MemberOutcome:
    """What `ensure_member` did, for the command to report."""

    membership: Membership
    user_created: bool
    change: str  # "added", "role changed" or "unchanged"


@transaction.atomic
def ensure_member(*, organization: Organization, username: str, role: str | None, email: str, actor: Any
                  ) -> MemberOutcome:
    """Make `username` a member of `organization`: create the user (with an unusable password, so only a
    set-password link lets them in) when missing, add them with `role` (viewer by default), or change an
    existing member's role when `role` is given."""
    user, created = _get_or_create_user(username=username, email=email, actor=actor, organization=organization)
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        membership = add_member(organization=organization, user=user, role=role or Role.VIEWER, actor=actor)
        return MemberOutcome(membership, created, "added")
    if role is None or role == membership.role:
        return MemberOutcome(membership, created, "unchanged")
    return MemberOutcome(change_role(membership=membership, role=role, actor=actor), created, "role changed")


def _get_or_create_user(*, username: str, email: str, actor: Any, organization: Organization
                        ) -> tuple[AbstractBaseUser, bool]:
    user_model = get_user_model()
    existing = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if existing is not None:
        return existing, False
    _validate_field("username", user_model._meta.get_field(user_model.USERNAME_FIELD).run_validators, username)
    if email:
        _validate_field("email", validate_email, email)
    user = user_model._default_manager.create_user(username, email=email or "", password=None)
    record_event(action="user.created", actor=actor, organization=organization, target=user, after=snapshot(user))
    return user, True


def _validate_field(name: str, validate: Any, value: str) -> None:
    """Run a Django validator; its error names the field it came from."""
    try:
        validate(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.messages}) from exc


@transaction.atomic
def issue_token(*, organization: Organization, name: str, actor: Any, scope: str = AgentToken.Scope.INGEST,
                expires_at: datetime.datetime | None = None) -> tuple[AgentToken, str]:
    """Create a token; returns (row, plaintext). The plaintext exists only in this return value. `scope`
    may be an alias (``write``); the canonical name is stored."""
    try:
        scope = normalize_scope(scope)
    except ValueError as exc:
        raise ValidationError({"scope": str(exc)}) from exc
    plaintext, prefix = generate_token()
    token = AgentToken(
        organization=organization, name=name, prefix=prefix, token_hash=hash_token(plaintext), scope=scope,
        expires_at=expires_at, created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    # The name and the expiry, whoever calls (API, page, admin, command); the two keys are ours, not input.
    token.full_clean(exclude={"organization", "created_by"}, validate_unique=False, validate_constraints=False)
    token.save(force_insert=True)
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
