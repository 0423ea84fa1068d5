"""Fixtures of the dashboards tests: the browser tests' server and Chromium (tests/browser.py)."""

from __future__ import annotations

from tests.browser import asgi_server, browser, browser_pages, signed_in_page  # noqa: F401  (fixtures)
