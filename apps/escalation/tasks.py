"""Thin Celery tasks of the escalation engine: one step per task, and a sweep that loses none."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from apps.escalation import engine, group_engine, shift_changes


def _queue(task: Task) -> str | None:
    """The queue this task came from, so follow-ups stay on it (a worker on a private queue keeps its own)."""
    info = getattr(task.request, "delivery_info", None) or {}
    return info.get("routing_key") or None


@shared_task(name=engine.RUN_STEP_TASK, bind=True, max_retries=0, acks_late=True)
def run_step(self: Task, alert_id: int, escalation_id: str, step_index: int, repeat: int, *args: Any) -> str:
    """Run one escalation step if it is still the one the alert's run expects (else nothing)."""
    return engine.run_step(alert_id=alert_id, escalation_id=escalation_id, step_index=step_index, repeat=repeat,
                           queue=_queue(self))


@shared_task(name=group_engine.GROUP_STEP_TASK, bind=True, max_retries=0, acks_late=True)
def run_group_step(self: Task, group_id: int, escalation_id: str, step_index: int, repeat: int, *args: Any) -> str:
    """Run one step of a group's escalation if it is still the one the group's run expects (else nothing)."""
    return group_engine.run_group_step(group_id=group_id, escalation_id=escalation_id, step_index=step_index,
                                       repeat=repeat, queue=_queue(self))


@shared_task(name=engine.SWEEP_TASK, bind=True, max_retries=0)
def sweep_escalations(self: Task) -> str:
    """Every 15 s: re-send overdue steps of alert and group runs (lost message, killed worker, restart)."""
    alerts = engine.resend_overdue(queue=_queue(self))
    groups = group_engine.resend_overdue(queue=_queue(self))
    return f"{alerts} overdue escalation steps re-sent, {groups} of group escalations"


@shared_task(name="escalation.check_shift_changes", bind=True, max_retries=0)
def check_shift_changes(self: Task) -> str:
    """Every minute: post "X is now on call" for each handoff of an opted-in schedule (once per handoff)."""
    return f"{shift_changes.check_shift_changes()} shift changes noticed"
