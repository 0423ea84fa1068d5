"""Whether an alert's notifications are suppressed right now (silence, maintenance window, dependency
inhibition). Placeholder answering "never" until suppression lands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.alerts.models import Alert


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why an alert is not notified: ``kind`` is silence | maintenance | inhibition, ``reason`` reads well
    on a page ("silenced by …", "inhibited by host db-1 down"), ``ref`` is the public id of the cause."""

    kind: str
    reason: str
    ref: str = ""


def suppression_for(alert: Alert, *, at: dt.datetime) -> Suppression | None:
    return None
