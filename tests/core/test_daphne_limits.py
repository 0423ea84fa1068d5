"""daphne's request class with the body limits (apps/core/daphne_limits.py), driven without a socket: where
a body is kept while it arrives and how large the pieces are that daphne hands the application."""

from __future__ import annotations

import io
from typing import Any

import pytest

from apps.core import daphne_limits


class FakeServer:
    request_buffer_size = 8192


class FakeChannel:
    def __init__(self, path: bytes) -> None:
        self._path = path
        self.written = b""
        self.transport = self
        self.lost = False

    def write(self, data: bytes) -> None:
        self.written += data

    def loseConnection(self) -> None:
        self.lost = True


class FakeRequest:
    """What the subclass calls on daphne's WebRequest."""

    def __init__(self, path: bytes = b"/api/v1/write?db=x") -> None:
        self.channel = FakeChannel(path)
        self.server = FakeServer()
        self.content: Any = None
        self.processed_with: int | None = None

    def gotLength(self, length: int | None) -> None:
        self.content = "twisted's own file"

    def handleContentChunk(self, data: bytes) -> None:
        self.content.write(data)

    def process(self) -> None:
        self.processed_with = self.server.request_buffer_size


Limited = daphne_limits._limited_request_class(FakeRequest)


def test_a_body_django_would_keep_in_memory_is_kept_in_memory(settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 2_000_000
    request = Limited()
    request.gotLength(1_700_000)  # a TSBS ingest body: Twisted would open a temporary file from 100 kB on
    assert isinstance(request.content, io.BytesIO)
    request.handleContentChunk(b"cpu v=1\n")
    assert request.content.getvalue() == b"cpu v=1\n"


@pytest.mark.parametrize("length", [2_000_001, None])
def test_larger_or_chunked_bodies_keep_twisteds_file(settings: Any, length: int | None) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 2_000_000
    request = Limited()
    request.gotLength(length)
    assert request.content == "twisted's own file"


def test_a_declared_length_over_the_limit_is_still_refused(settings: Any) -> None:
    settings.FIBERSTACK_INGEST_MAX_BODY_BYTES = 1024
    request = Limited()
    request.requestHeaders = type("H", (), {"removeHeader": lambda self, name: None})()
    request.gotLength(1025)
    assert request.channel.written.startswith(b"HTTP/1.1 413 ") and request.channel.lost
    request.process()
    assert request.processed_with is None  # the application never sees it


def test_the_body_reaches_the_application_in_large_pieces() -> None:
    """daphne's default of 8 KiB made a 1.7 MB body ~210 ASGI messages."""
    request = Limited()
    request.process()
    assert request.processed_with == daphne_limits.BODY_MESSAGE_BYTES
    bigger = Limited()
    bigger.server.request_buffer_size = 4 * daphne_limits.BODY_MESSAGE_BYTES  # a server built larger stays so
    bigger.process()
    assert bigger.processed_with == 4 * daphne_limits.BODY_MESSAGE_BYTES
