"""What the alert and the group escalation engines share: publishing a step task at its time, and moving
a run past the step just done. Both kinds of run have the same stepping fields (step_index, repeat,
steps_done, next_step_at, last_enqueued_at, policy)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from celery import current_app
from django.conf import settings


def publish(task: str, args: list[Any], eta: dt.datetime | None, queue: str | None) -> None:
    """Publish one step task. ``send_task`` (not ``apply_async``) so the in-process eager test mode
    never runs a step before its time; ``queue`` keeps a worker's follow-ups on the queue it consumes."""
    options: dict[str, Any] = {"task_id": str(uuid.uuid4())}
    if eta is not None:
        options["eta"] = eta
    queue = queue or settings.FIBERSTACK_ESCALATION_QUEUE or None
    if queue:
        options["queue"] = queue
    current_app.send_task(task, args=args, **options)


def advance(run: Any, steps: int, wait_seconds: int, now: dt.datetime) -> bool:
    """Move a run (an alert's or a group's) past the step just done and save it; False when every step of
    every pass is done (the caller ends the run)."""
    run.steps_done += 1
    if run.step_index + 1 < steps:
        run.step_index += 1
    elif run.policy is not None and run.repeat < run.policy.repeat_count:
        run.step_index, run.repeat = 0, run.repeat + 1
    else:
        run.save()
        return False
    run.next_step_at = now + dt.timedelta(seconds=wait_seconds)
    run.last_enqueued_at = run.next_step_at
    run.save()
    return True
