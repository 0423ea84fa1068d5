"""One web worker of ``fiberstack.webserver``: daphne, with accepts spread over the workers by their load.

Every worker waits on the same listening socket, and Twisted accepts everything pending whenever the
socket is readable: two agents connecting together usually land on the same process, and a process runs
one request's Python at a time (the GIL), so the other core idles while that process parses both
connections' bodies in turn. Seen with the TSBS bench's two keep-alive clients on two workers: one worker
held both connections (6 s of CPU against 1 s for the other), and ingest ran at 639 k values/s against
704 k with the connections spread (bench/README.md, "Third pass").

So when the socket becomes readable, a worker that already holds connections waits before it accepts:
``ACCEPT_DELAY_PER_CONNECTION`` per connection, at most ``ACCEPT_DELAY_MAX``. The least loaded worker,
woken by the same readiness, waits least (not at all when it holds none) and takes the connection, one
per readiness: on an idle machine a burst of 8 connections to 2 workers is dealt out 4 and 4 (plain
daphne: anything from 1/7 to 4/4), and workers stay within about one connection of each other; on a
loaded one a worker that wakes late may get one fewer (3/5 seen under the test suite's load). No shared state between
processes (nginx's ``accept_mutex`` heuristic is local too). The price: when every worker holds
connections, a new one waits up to ``ACCEPT_DELAY_MAX`` (5 ms) to be accepted, and a worker accepts at
least 200 connections a second; agents keep their connections open, so that is not a limit they meet.

Run as ``python -m fiberstack.webworker`` with daphne's own arguments (``webserver.daphne_command``)."""

from __future__ import annotations

import sys
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

ACCEPT_DELAY_PER_CONNECTION = 0.001  # seconds per connection this worker holds
ACCEPT_DELAY_MAX = 0.005


def accept_delay(open_connections: int) -> float:
    """How long a worker holding ``open_connections`` leaves a pending connection to the others."""
    return min(open_connections * ACCEPT_DELAY_PER_CONNECTION, ACCEPT_DELAY_MAX)


class LoadSpreadAccepts:
    """Wraps a listening Twisted port: counts the connections it accepted that are still open, and accepts
    at once when it holds none, else after ``accept_delay``."""

    def __init__(self, port: Any, reactor: Any) -> None:
        self.port = port
        self.reactor = reactor
        self.open_connections = 0
        self._accept = port.doRead
        self._waited = False

    def install(self) -> None:
        # Instance attributes: only this port of this process changes. ``transport`` is the class the port
        # makes each accepted socket's transport from (Twisted's tcp.Port.transport, tcp.Server); counting
        # there sees every TCP connection until it closes, whatever protocol it carries (daphne hands an
        # upgraded websocket to another protocol object on the same transport).
        self.port.doRead = self.do_read
        self.port.transport = self._counted(self.port.transport)

    def _counted(self, transport: type) -> type:
        accepts = self

        class CountedConnection(transport):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                accepts.open_connections += 1

            def connectionLost(self, reason: Any) -> None:  # Twisted's name
                accepts.open_connections -= 1
                super().connectionLost(reason)

        return CountedConnection

    def do_read(self) -> None:
        delay = 0.0 if self._waited else accept_delay(self.open_connections)
        if delay == 0:
            self._waited = False
            # One at a time (Twisted would take everything queued): the next readiness decides again, with
            # this connection counted, so a burst is dealt out over the workers.
            self.port.numberAccepts = 1
            self._accept()
            return
        self.port.stopReading()
        self.reactor.callLater(delay, self._retry)

    def _retry(self) -> None:
        if self.port.connected:  # not stopped (shutdown) meanwhile
            self._waited = True
            # If the connection was taken meanwhile, the socket is not readable and do_read is not called:
            # the next readiness then starts a new delay.
            self.port.startReading()


class LoadSpreadServer(Server):
    """daphne's server with ``LoadSpreadAccepts`` on each listening TCP port."""

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        if hasattr(port, "doRead") and hasattr(port, "transport"):
            from twisted.internet import reactor

            LoadSpreadAccepts(port, reactor).install()


class WorkerCommandLine(CommandLineInterface):
    server_class = LoadSpreadServer


def main() -> None:
    WorkerCommandLine().run(sys.argv[1:])


if __name__ == "__main__":
    main()
