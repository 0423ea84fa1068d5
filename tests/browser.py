"""Browser-test support: the real ASGI server (``python -m fiberstack.webserver``, HTTP and websockets, as in
production) on the suite's database and Redis, and Debian's Chromium driven by Playwright for Python.

Use from a test module (tests under ``tests/<app>/test_browser.py``)::

    # conftest.py of the package: from tests.browser import asgi_server, browser, signed_in_page  # noqa: F401
    pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]

Chromium comes from apt (``make test`` installs the ``chromium`` package as root, see
fiberstack/devstack/cli.py TEST_CLIENT_PACKAGES), never from ``playwright install``. Without it the tests
skip, except under CI (``CI`` set), where a missing browser fails them. The server and the browser are
started once per module; the data is the test's own (``transactional_db``: the server is another process
and sees only committed rows). Every page a test opens is checked afterwards for JavaScript and HTTP errors
and for requests that would have left 127.0.0.1 (aborted before they do), and photographed into
var/screenshots/ at every load and at the end of the test (``Pages``). ``signed_in_page`` signs in through
the real login form, with the TOTP step when given the user's device."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from fiberstack.devstack.system import free_port
from tests.core.test_webserver import server_env

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("FIBERSTACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "correct horse battery"
SERVER_START_SECONDS = 60


def chromium_path() -> str:
    """Debian's Chromium, or skip (fail under CI: there the suite must prove the pages in a browser)."""
    found = shutil.which(CHROMIUM)
    if found:
        return found
    message = f"{CHROMIUM} is missing: `make test` installs the Debian package chromium when run as root"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class LiveServer:
    """The real web server: ``url`` ("http://127.0.0.1:PORT") and its log, for failure messages."""

    url: str
    log: Path

    def post_json(self, path: str, body: object, token: str) -> tuple[int, bytes]:
        """A POST from outside the browser (an agent's push), through the server's own HTTP door."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                          "Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture(scope="module")
def asgi_server(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[LiveServer]:
    """One daphne worker serving the ASGI application (HTTP, websockets) on a free port. DEBUG on so that
    WhiteNoise serves static files from the finders (no collectstatic in the test run)."""
    chromium_path()  # no server for a browser that is not there
    with django_db_blocker.unblock():
        env = server_env(WEB_WORKERS="1", DEBUG="true")
    port = free_port()
    log = tmp_path_factory.mktemp("live-server") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "fiberstack.webserver", "--bind", "127.0.0.1", "--port",
                                    str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _answers(port):
            assert process.poll() is None, f"the web server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer within {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        yield LiveServer(f"http://127.0.0.1:{port}", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the module. Playwright's sync API keeps an event loop running in this thread
    while it is started, which Django would take for async code: the ORM is allowed for the module's
    duration only, and Playwright is stopped before the next module runs."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


LOCAL_PREFIXES = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")


@dataclass
class PageProblems:
    """What a page must not do: throw, log console errors, answer an error status, or fetch anything off
    127.0.0.1 (such a request is aborted before it leaves, and recorded)."""

    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def assert_none(self) -> None:
        assert not self.errors, self.errors
        assert not self.foreign, self.foreign


def usable_password(user: Any) -> None:
    """The suite hashes with MD5 (fast), which the server's settings do not accept: store a PBKDF2 hash
    (few iterations, still fast) that both accept, so the browser signs in through the real form."""
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "browsertestsalt", iterations=1000)
    user.save(update_fields=["password"])


def totp_code(device: Any) -> str:
    """The code the user's authenticator shows now, computed as django-otp (the app's library) checks it."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _screenshot_name(test: str, index: int, url: str) -> str:
    """``<test>-<n>-<path>``; ids become "id", so a rerun replaces its screenshots instead of adding more."""
    path = _UUID.sub("id", urlsplit(url).path).strip("/") or "root"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test}-{index:02d}-{path}")[:150]


class Pages:
    """The pages of one test, in one browser context. Every page is watched from its creation (JavaScript
    errors, console errors, HTTP errors, requests and websockets that leave 127.0.0.1 -- the latter aborted
    by the context's route before they leave) and photographed into var/screenshots/ each time a document
    finishes loading and once more as the test leaves it."""

    def __init__(self, context: Any, server: LiveServer, test_name: str) -> None:
        self.context = context
        self.server = server
        self.test_name = test_name
        self.problems = PageProblems()
        self.shots = 0
        context.route("**/*", self._route)
        context.on("page", self._watch)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(LOCAL_PREFIXES):
            route.continue_()
        else:
            self.problems.foreign.append(route.request.url)
            route.abort("blockedbyclient")

    def _watch(self, page: Any) -> None:
        errors, foreign = self.problems.errors, self.problems.foreign
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text} {msg.location.get('url', '')}")
                if msg.type == "error" else None)
        page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.on("websocket", lambda ws: None if ws.url.startswith(LOCAL_PREFIXES) else foreign.append(ws.url))
        # The viewport only: a full-page shot resizes the viewport for a moment, which pages answer (charts
        # redraw on resize) while the test is running.
        page.on("load", lambda: self.shoot(page, full_page=False))

    def shoot(self, page: Any, *, full_page: bool = True) -> None:
        """Keep what the page shows now under var/screenshots/<test>-<n>-<path>.png."""
        if page.is_closed() or not page.url.startswith("http"):
            return
        self.shots += 1
        screenshot(page, _screenshot_name(self.test_name, self.shots, page.url), full_page=full_page)

    def new(self) -> Any:
        return self.context.new_page()

    def sign_in(self, user: Any, next_path: str = "/", device: Any = None) -> Any:
        """A page signed in through the login form -- and, with ``device`` (the user's TOTP device), through
        the second step with the code the authenticator shows -- that has arrived at ``next_path``."""
        usable_password(user)
        page = self.new()
        page.goto(f"{self.server.url}/accounts/login/?next={next_path}")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        if device is not None:
            assert urlsplit(page.url).path == "/accounts/login/verify/", page.url
            enter_totp(page, device)
        assert urlsplit(page.url).path == next_path, page.url
        return page

    def close(self) -> None:
        for page in self.context.pages:
            self.shoot(page)
        self.context.close()


def enter_totp(page: Any, device: Any) -> None:
    """Type the authenticator's current code into the second sign-in step and submit it."""
    page.fill("input[name=code]", totp_code(device))
    with page.expect_navigation():
        page.click("button[type=submit]")


@pytest.fixture
def browser_pages(browser: Any, asgi_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """The test's pages (:class:`Pages`); their problems are asserted at teardown."""
    pages = Pages(browser.new_context(viewport={"width": 1280, "height": 900}), asgi_server, request.node.name)
    try:
        yield pages
        pages.problems.assert_none()
    finally:
        pages.close()


@pytest.fixture
def signed_in_page(browser_pages: Pages) -> Callable[..., Any]:
    """``sign_in(user, next_path="/", device=None)`` -> a page signed in through the login form (and the
    two-factor step with ``device``); its problems are asserted at teardown."""
    return browser_pages.sign_in


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Keep what the test saw under var/screenshots/ (not committed; CI can upload it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
