"""apps.core.hooks: batches of payloads go to a consumer's ``batch`` in one call, to the others one by one;
one consumer failing never stops the next."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.hooks import AfterCommitHook

calls: list[tuple[str, Any]] = []


def one_by_one(payload: Any) -> None:
    calls.append(("one", payload))


def batched(payload: Any) -> None:
    calls.append(("one-of-batched", payload))


def _batch(payloads: list[Any]) -> None:
    calls.append(("batch", payloads))


batched.batch = _batch  # type: ignore[attr-defined]


def broken(payload: Any) -> None:
    raise RuntimeError("down")


broken.batch = lambda payloads: broken(payloads)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _clean() -> None:
    calls.clear()


def test_a_batch_goes_to_batch_consumers_in_one_call_and_to_the_others_in_order(settings: Any) -> None:
    settings.TEST_HOOK = ["tests.core.test_hooks.broken", "tests.core.test_hooks.batched",
                          "tests.core.test_hooks.one_by_one"]
    AfterCommitHook(setting="TEST_HOOK", what="test consumer", check_id="tests.E001").dispatch_batch([1, 2, 3])
    assert calls == [("batch", [1, 2, 3]), ("one", 1), ("one", 2), ("one", 3)]
