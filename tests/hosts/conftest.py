"""The per-process name→id caches outlive a test's database rollback; start each test without them."""

from __future__ import annotations

import pytest

from apps.hosts import services
from tests.browser import asgi_server, browser, browser_pages, signed_in_page  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _clear_local_host_caches() -> None:
    services._local_ids.clear()
    services._local_fingerprints.clear()
