"""``manage.py grant_app_role ROLE``: give the application's database role what it needs, and no more.

Run as the OWNER role (``DATABASE_URL`` set to the owner's URL) after every ``migrate``; the container
entrypoint and ``make run`` do. Idempotent. The statements are ``fiberstack.dbroles.grant_statements``
(docs/database-roles.md explains the two roles)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from fiberstack.dbroles import grant_statements


class Command(BaseCommand):
    help = "Grant DML (and nothing that alters the schema) to the app role; run as the owner role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the role the application connects as (DATABASE_URL's user)")

    def handle(self, *args: Any, **options: Any) -> None:
        role = options["role"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), current_schema(), "
                           "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", [role])
            owner, database, schema, exists = cursor.fetchone()
            if not exists:
                raise CommandError(f"role {role!r} does not exist; create it first (docs/database-roles.md)")
            if role == owner:
                raise CommandError(f"{role!r} is the role running this command, i.e. the owner; the app role "
                                   "must be another one")
            with transaction.atomic():
                for statement in grant_statements(owner=owner, app=role, database=database, schema=schema):
                    cursor.execute(statement)
        self.stdout.write(f"granted {role!r} DML on {database}.{schema} (tables owned by {owner!r})")
