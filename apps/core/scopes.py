"""Agent token scopes and what each grants. Lives in core, beside roles, because the API permission
class checks scopes; `organizations.AgentToken.scope` uses these choices.

A token is given for one job, and gets only what that job needs:

* ``ingest`` -- push samples through the ingest doors (registering the hosts they name). Nothing else:
  a leaked agent token must not read the organization's metrics, hosts or members.
* ``read`` -- read metrics, series, hosts and services (dashboards, Grafana, scripts).
* ``config`` -- ``read`` plus managing configuration through the API (configuration as code).

No scope reaches members, tokens or the audit log: those need a signed-in owner or admin."""

from __future__ import annotations

from django.db import models


class TokenScope(models.TextChoices):
    INGEST = "ingest", "Ingest (push metrics)"
    READ = "read", "Read"
    CONFIG = "config", "Read and configure"


# `TokenScope.WRITE` stays an alias of INGEST for code written before the split. Set after the class body:
# a duplicate value inside it would be refused by Django's unique enum check, and this way it is no choice.
TokenScope.WRITE = TokenScope.INGEST  # type: ignore[attr-defined]

#: Names that clients and scripts may still send. ``write`` was the ingest scope's name before scopes were
#: split (its tokens were migrated to ``ingest``); it is accepted on input and never stored.
SCOPE_ALIASES: dict[str, str] = {"write": TokenScope.INGEST}

#: The scopes a token of each scope holds; `scope_allows` is the only reader.
SCOPE_GRANTS: dict[str, frozenset[str]] = {
    TokenScope.INGEST: frozenset({TokenScope.INGEST}),
    TokenScope.READ: frozenset({TokenScope.READ}),
    TokenScope.CONFIG: frozenset({TokenScope.READ, TokenScope.CONFIG}),
}

#: Every name a client may send for a scope, canonical names first (for command-line and API choices).
SCOPE_NAMES: tuple[str, ...] = (*TokenScope.values, *SCOPE_ALIASES)


def normalize_scope(name: str) -> str:
    """The canonical scope for `name` (``write`` -> ``ingest``); ValueError for an unknown name."""
    canonical = SCOPE_ALIASES.get(name, name)
    if canonical not in SCOPE_GRANTS:
        raise ValueError(f"Unknown token scope {name!r}: use one of {', '.join(SCOPE_NAMES)}.")
    return canonical


def scope_allows(scope: str | None, required: str) -> bool:
    """True when a token of `scope` may do what needs `required`."""
    if scope is None:
        return False
    return required in SCOPE_GRANTS.get(SCOPE_ALIASES.get(scope, scope), frozenset())
