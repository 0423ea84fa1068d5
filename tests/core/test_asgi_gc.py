"""The ASGI module freezes what it loaded (``gc.freeze``): full collections during requests must not rescan
the long-lived heap, which made every tenth host-list request ~115 ms slower (bench/pages.py)."""

from __future__ import annotations

import gc


def test_the_asgi_application_leaves_its_import_time_heap_frozen() -> None:
    import fiberstack.asgi  # noqa: F401

    assert gc.get_freeze_count() > 50_000
