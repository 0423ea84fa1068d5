"""`manage.py add_member ORG_SLUG USERNAME [--role owner|admin|editor|viewer] [--email E]`: make a user a
member of an organization, creating the account when it does not exist.

A new account gets an unusable password and the command prints a set-password link (Django's reset
token on the reset-confirm page) for the operator to hand over. For an existing member, `--role` changes
the role; without it nothing changes. The last owner can be neither demoted here nor anywhere else."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import error_sentence
from apps.core.roles import Role
from apps.organizations.models import Organization
from apps.organizations.onboarding import link_lifetime, set_password_url
from apps.organizations.services import ensure_member


class Command(BaseCommand):
    help = "Add a user to an organization (creating the user if needed) or change a member's role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org_slug")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, default=None,
                            help="role to give (default for a new member: viewer; an existing member keeps "
                                 "their role unless this is given)")
        parser.add_argument("--email", default="", help="email address of a user created by this command")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["org_slug"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug {options['org_slug']!r}")
        try:
            outcome = ensure_member(organization=organization, username=options["username"], role=options["role"],
                                    email=options["email"], actor=None)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(error_sentence(exc)) from exc
        membership, user = outcome.membership, outcome.membership.user
        if outcome.user_created:
            self.stdout.write(f"Created user {user.get_username()}.")
        elif options["email"] and options["email"] != getattr(user, "email", ""):
            self.stderr.write(f"User {user.get_username()} exists: --email ignored (their email is unchanged).")
        self.stdout.write({
            "added": f"Added {user.get_username()} to {organization.slug} as {membership.role}.",
            "role changed": f"{user.get_username()} is now {membership.role} in {organization.slug}.",
            "unchanged": f"{user.get_username()} is already {membership.role} in {organization.slug}.",
        }[outcome.change])
        if not user.has_usable_password():
            hours = int(link_lifetime().total_seconds() // 3600)
            self.stdout.write(f"Set-password link (single use, valid {hours} hours): {set_password_url(user)}")

