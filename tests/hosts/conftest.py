"""The per-process name→id caches outlive a test's database rollback; start each test without them."""

from __future__ import annotations

import pytest

from apps.hosts import services
from tests.browser import asgi_server, browser, signed_in_page  # noqa: F401  (fixtures of test_browser.py)


@pytest.fixture(autouse=True)
def _clear_local_host_caches() -> None:
    services._local_ids.clear()
    services._local_fingerprints.clear()
