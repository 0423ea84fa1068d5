"""`manage.py seed_demo`: the demo organization `demo`, an admin user and an agent token for
`make run`. Idempotent: a second run keeps what exists and reprints the saved credentials."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from apps.core.roles import Role
from apps.organizations.models import Membership, Organization
from apps.organizations.services import add_member, authenticate_token, create_organization, issue_token

ADMIN_USERNAME = "admin"


def read_credentials(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = shlex.split(value)[0] if value else ""
    return values


class Command(BaseCommand):
    help = "Create the demo organization, an admin user and an agent token (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT') or 8000}")
        parser.add_argument("--credentials-file", default=str(settings.VAR_DIR / "demo-credentials"))

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["credentials_file"])
        saved = read_credentials(path)
        user_model = get_user_model()
        password = saved.get("FIBERSTACK_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user, created = user_model.objects.get_or_create(
            username=ADMIN_USERNAME, defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save()
        organization = Organization.objects.filter(slug="demo").first()
        if organization is None:
            organization = create_organization(name="Demo", slug="demo", actor=None, plan=Organization.Plan.TEAM)
        if not Membership.objects.filter(organization=organization, user=user).exists():
            add_member(organization=organization, user=user, role=Role.OWNER, actor=None)
        token = saved.get("FIBERSTACK_AGENT_TOKEN")
        if not token or authenticate_token(token) is None:
            _, token = issue_token(organization=organization, name="demo agent", actor=None)
        values = {
            "FIBERSTACK_URL": options["url"],
            "FIBERSTACK_ORG": organization.slug,
            "FIBERSTACK_ADMIN_USER": ADMIN_USERNAME,
            "FIBERSTACK_ADMIN_PASSWORD": password,
            "FIBERSTACK_AGENT_TOKEN": token,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()))
        path.chmod(0o600)
        self.stdout.write(
            f"Demo organization: {options['url']}/demo/\n"
            f"Admin:             {options['url']}/admin/  user {ADMIN_USERNAME}  password {password}\n"
            f"Agent token:       {token}\n"
            f"(saved in {path})\n"
        )
