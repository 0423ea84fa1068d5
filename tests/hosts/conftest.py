"""The per-process name→id caches outlive a test's database rollback; start each test without them."""

from __future__ import annotations

import pytest

from apps.hosts import services


@pytest.fixture(autouse=True)
def _clear_local_host_caches() -> None:
    services._local_ids.clear()
    services._local_fingerprints.clear()
