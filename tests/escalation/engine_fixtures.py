"""Fixtures of the in-process engine tests (alert and group escalation): a fake clock, a runner of
after-commit callbacks and a recorder of the alert engine's scheduled steps. Import them by their function
names; they register as ``clock``, ``commit`` and ``steps``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from apps.escalation import engine
from tests.escalation.factories_policies import StepRecorder

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(timezone, "now", fake)
    return fake


@pytest.fixture(name="commit")
def commit_fixture(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Any]], Any]:
    """Run ``fn`` and then its after-commit callbacks (the alert hook, the step scheduling)."""
    def run(fn: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn()
    return run


@pytest.fixture(name="steps")
def steps_fixture(monkeypatch: pytest.MonkeyPatch) -> StepRecorder:
    """The alert engine's step scheduling, recorded instead of sent to Celery."""
    recorder = StepRecorder()
    monkeypatch.setattr(engine, "_enqueue", recorder)
    return recorder
