"""``manage.py agent --url URL --token TOKEN [--interval 10] [--host NAME] [--probe URL …] [--once]``:
run the reference agent. A thin wrapper: the agent is a client of the public API and needs neither the
database nor the settings beyond logging (see apps/metrics/agent/)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.metrics.agent.runner import add_arguments, run_from_options


class Command(BaseCommand):
    help = "Collect this machine's metrics (and optional probes) and push them to FiberStack."
    # No system checks: the agent does not use the project's models, and often runs on another machine.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            status = run_from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if status:
            raise CommandError("push failed (see the log above)", returncode=status)
