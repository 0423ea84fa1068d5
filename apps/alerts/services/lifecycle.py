"""Alert transitions. Placeholder signatures until the lifecycle work lands (it replaces this module)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from apps.alerts.models import Alert, AlertRule
from apps.alerts.outcomes import Outcome


def record_outcomes(*, rule: AlertRule, outcomes: Sequence[Outcome], at: dt.datetime, complete: bool) -> list[Alert]:
    """Apply one evaluation of ``rule``: create/advance/resolve its alerts. ``complete``: the outcomes cover
    every label set the rule sees now, so open alerts missing from them are treated as clear."""
    raise NotImplementedError


def acknowledge_alert(*, alert: Alert, actor: Any) -> Alert:
    raise NotImplementedError


def resolve_alert(*, alert: Alert, actor: Any) -> Alert:
    raise NotImplementedError
