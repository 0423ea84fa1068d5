"""`manage.py issue_token ORG_SLUG NAME [--scope ingest|write|read|config]`: print only the new token on
stdout, so scripts can capture it (`TOKEN=$(manage.py issue_token demo telegraf)`). `write` is the ingest
scope's former name and still accepted."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.core.cli import whole_number
from apps.core.errors import error_sentence
from apps.core.scopes import SCOPE_NAMES, TokenScope
from apps.organizations.models import Organization
from apps.organizations.services import issue_token


class Command(BaseCommand):
    help = "Issue an agent token for an organization and print it (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org_slug")
        parser.add_argument("name")
        parser.add_argument("--scope", choices=SCOPE_NAMES, default=TokenScope.INGEST.value,
                            help="ingest: push only (default; `write` is its old name); read: read metrics and "
                                 "hosts; config: read and manage configuration")
        parser.add_argument("--expires-in-days", type=whole_number(1, 3650), default=None,
                            help="the token stops working after this many days (default: never)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organization = Organization.objects.get(slug=options["org_slug"])
        except Organization.DoesNotExist as exc:
            raise CommandError(f"No organization with slug {options['org_slug']!r}") from exc
        expires_at = None
        if options["expires_in_days"] is not None:
            expires_at = timezone.now() + datetime.timedelta(days=options["expires_in_days"])
        try:
            _, plaintext = issue_token(organization=organization, name=options["name"], scope=options["scope"],
                                       expires_at=expires_at, actor=None)
        except ValidationError as exc:
            raise CommandError(error_sentence(exc)) from exc
        self.stdout.write(plaintext)
