# ruff: noqa: S603, S607
"""syslog-ng for the test suite, unpacked from Debian's packages under var/syslog-ng.

Debian's rsyslog and syslog-ng packages conflict (each is *the* system log daemon), and the suite drives
both for real. rsyslog is installed like the other test clients (TEST_CLIENT_PACKAGES); syslog-ng is
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` beside it, never installed, so it replaces
nothing and starts nothing. Its libraries that a Debian system usually lacks are unpacked with it; the
tests run it with LD_LIBRARY_PATH and --module-path pointing there (tests/logs/shippers.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from fiberstack.devstack.config import Layout

#: The program, its http() module, and the libraries of syslog-ng-core that are not in a base system.
PACKAGES = ("syslog-ng-core", "syslog-ng-mod-http", "libivykis0", "libnet1", "libpcre3")


def root(layout: Layout) -> Path:
    return layout.var / "syslog-ng"


def unpack(layout: Layout) -> str | None:
    """Unpack the packages under var/syslog-ng unless already there; a sentence saying why not, or None.
    Best effort: the syslog-ng tests skip with that reason when the program is missing."""
    target = root(layout)
    if (target / "usr" / "sbin" / "syslog-ng").exists():
        return None
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return "apt-get and dpkg are needed to unpack syslog-ng"
    with tempfile.TemporaryDirectory(prefix="fiberstack-syslog-ng-") as download:
        fetched = subprocess.run(["apt-get", "download", *PACKAGES], cwd=download, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, check=False)
        if fetched.returncode != 0:
            return f"apt-get download {' '.join(PACKAGES)} failed: {fetched.stderr.strip()[-300:]}"
        staging = target.with_name("syslog-ng.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for deb in sorted(Path(download).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(staging)], stdin=subprocess.DEVNULL, check=True)
        staging.rename(target)  # complete or absent, never half unpacked
    return None
