"""The two PostgreSQL roles of a hardened installation, and the privileges that tie them together.

The OWNER role runs the migrations and so owns every table, sequence and function. The APP role, which
``DATABASE_URL`` names for web, workers and beat, gets DML on tables, USAGE/SELECT on sequences and
EXECUTE on functions, and owns nothing: it cannot ALTER a table, disable the audit log's triggers or
TRUNCATE. The DDL the product does at run time (daily partitions, partition and chunk retention, chunk
compression, the audit purge) goes through SECURITY DEFINER functions that the owner's migrations
create (``apps.metrics.storage.ddl``, audit migration 0003).

This module only renders SQL (standard library only, so the devstack can import it before Django is
configured). The devstack cluster, ``manage.py grant_app_role``, the test suite and
docs/database-roles.md all use it, so the grants exist in one place."""

from __future__ import annotations

# Tables whose rows must never change once written. The triggers refuse UPDATE/DELETE/TRUNCATE anyway;
# without the privileges the app role is stopped before it even reaches them.
APPEND_ONLY_TABLES = ("audit_auditevent",)


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always double-quoted (role names may hold any character)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_app_role_sql(app: str, password: str | None = None) -> str:
    """CREATE ROLE for the app role, unless it exists: login, no attributes that could undo the point."""
    secret = f" PASSWORD {quote_literal(password)}" if password else ""
    statement = f"CREATE ROLE {quote_ident(app)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION{secret}"
    # Two processes (xdist workers, two containers) may race to create it: the loser finds it there.
    exists = f"SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(app)}"  # noqa: S608 - quoted
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS ({exists}) THEN {statement}; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; "
        "END $$"
    )


def grant_statements(*, owner: str, app: str, database: str, schema: str = "public") -> list[str]:
    """Idempotent GRANT/REVOKE statements, run as ``owner`` in ``database`` after every migrate.

    ALTER DEFAULT PRIVILEGES covers what the owner creates later (new migrations' tables, partitions
    created through its SECURITY DEFINER functions); the GRANT ... ON ALL covers what exists already."""
    o, a, d, s = quote_ident(owner), quote_ident(app), quote_ident(database), quote_ident(schema)
    statements = [
        f"GRANT CONNECT ON DATABASE {d} TO {a}",
        # Nobody but the owner creates objects: no tables in the schema, no temporary tables either.
        f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC",
        f"REVOKE TEMPORARY ON DATABASE {d} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {s} TO {a}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {a}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {a}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT EXECUTE ON FUNCTIONS TO {a}",
    ]
    for table in APPEND_ONLY_TABLES:
        # Skipped before the first migrate (the devstack grants before it, too).
        statements.append(
            f"DO $$ BEGIN IF to_regclass({quote_literal(f'{schema}.{table}')}) IS NOT NULL THEN "
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {s}.{quote_ident(table)} FROM {a}; END IF; END $$"
        )
    return statements
