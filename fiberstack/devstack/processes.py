"""A tiny foreman: run the product's processes together, prefix their output, stop them together.

The children stay in devstack's process group, so Ctrl-C in the terminal reaches all of them at
once even if this supervisor is wedged; the supervisor then makes sure every one of them really
exits (SIGTERM, then SIGKILL after a timeout, descendants included).
"""

# ruff: noqa: S603
# Children are the product's own commands (daphne, celery, manage.py) built by the caller.

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TextIO

COLOURS = ("36", "33", "35", "32", "34", "31")


@dataclass
class Child:
    """One supervised process and the thread that copies its output."""

    name: str
    process: subprocess.Popen[bytes]
    reader: threading.Thread
    expected_exit: bool = False


def line_prefix(name: str, width: int, colour: str | None) -> str:
    """`web    | ` — padded so the columns line up; coloured on a terminal."""
    label = f"{name:<{width}} | "
    return f"\033[{colour}m{label}\033[0m" if colour else label


@dataclass
class Supervisor:
    """Starts children, streams their output, and tears everything down on the first failure or
    signal. `run()` returns the exit status devstack should exit with."""

    name_width: int = 6
    stop_timeout: float = 10.0
    out: TextIO = field(default_factory=lambda: sys.stdout)
    children: list[Child] = field(default_factory=list)
    failure: str | None = None
    stop_signal: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- output -------------------------------------------------------------------------------

    def _colour(self, index: int) -> str | None:
        if os.environ.get("NO_COLOR") or not hasattr(self.out, "isatty") or not self.out.isatty():
            return None
        return COLOURS[index % len(COLOURS)]

    def write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def _pump(self, stream: IO[bytes], prefix: str) -> None:
        for raw in iter(stream.readline, b""):
            self.write(prefix + raw.decode("utf-8", errors="replace").rstrip("\r\n") + "\n")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, pass_fds: Sequence[int] = ()
    ) -> Child:
        """Start a child; `pass_fds` are inherited (the web workers' shared listening socket)."""
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
        )
        assert process.stdout is not None  # stdout=PIPE above
        prefix = line_prefix(name, self.name_width, self._colour(len(self.children)))
        reader = threading.Thread(target=self._pump, args=(process.stdout, prefix), daemon=True)
        reader.start()
        child = Child(name=name, process=process, reader=reader)
        self.children.append(child)
        return child

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM/SIGHUP request an orderly stop; a second one forces it."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            if self.stop_signal is not None:
                self._kill_all()
            self.stop_signal = signum

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, handler)

    def _check_children(self) -> bool:
        """Record the first child that exits on its own; True while all still run."""
        for child in self.children:
            code = child.process.poll()
            if code is not None and not child.expected_exit:
                child.expected_exit = True
                self.failure = f"{child.name} {describe_exit(code)}"
                return False
        return True

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait for `condition` (e.g. the web port answering) while watching children and signals."""
        deadline = time.monotonic() + timeout
        while self.stop_signal is None and self._check_children():
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return False

    def supervise(self) -> int:
        """Block until a child exits or a stop is requested, then stop everyone."""
        while self.stop_signal is None and self._check_children():
            time.sleep(0.2)
        return self.shutdown()

    def shutdown(self) -> int:
        """Stop all children: SIGTERM, wait `stop_timeout`, then SIGKILL whatever is left."""
        if self.failure:
            self.write(f"devstack: {self.failure}; stopping the other processes\n")
        elif self.stop_signal is not None:
            self.write(f"devstack: {signal.Signals(self.stop_signal).name} received, stopping\n")
        for child in self.children:
            if child.process.poll() is None:
                child.expected_exit = True
                child.process.terminate()
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and any(c.process.poll() is None for c in self.children):
            time.sleep(0.1)
        if any(c.process.poll() is None for c in self.children):
            self.write(f"devstack: still running after {self.stop_timeout:.0f}s, killing\n")
            self._kill_all()
        for child in self.children:
            child.process.wait()
            child.reader.join(timeout=2)
        return 1 if self.failure else 0

    def _kill_all(self) -> None:
        """SIGKILL children and their descendants (e.g. celery's prefork pool, which would otherwise
        be orphaned when its parent cannot run its own shutdown)."""
        for child in self.children:
            if child.process.poll() is None:
                for pid in [*descendants(child.process.pid), child.process.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def describe_exit(code: int) -> str:
    """'exited with code 3' or 'was killed by SIGKILL' (Popen reports signals as negative codes)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def descendants(pid: int) -> list[int]:
    """Pids of all descendants of `pid`, if psutil is importable (it is in the project's venv)."""
    try:
        import psutil  # optional: devstack must import without it
    except ImportError:
        return []
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []
