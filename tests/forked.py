"""Run a check in a forked child and fail (not hang) when it does not finish: a backtracking regular
expression holds the GIL, so a thread running one could not be waited for."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest


def finishes_in_a_child(target: Callable[..., None], *args: Any, timeout: float = 30) -> None:
    """``target(*args)`` in a forked child; pytest.fail when it is still running after ``timeout`` seconds,
    and an assertion error when it raised (the child's traceback is on stderr)."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(timeout=timeout)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"{getattr(target, '__name__', target)} was still running after {timeout:g} s")
    assert child.exitcode == 0, f"{getattr(target, '__name__', target)} failed in the child (see its stderr)"
