"""Request body limits in daphne itself, before the body is received.

daphne (Twisted's HTTP channel underneath) reads the *whole* request body into a temporary file before it
calls the ASGI application at all, so ``apps.core.asgi_limits`` only ever sees a request once every byte
is on the server's disk: a request declaring ``Content-Length: 99999999999`` was never answered (daphne
waited for the body, filling a temporary file as it came), and an endless chunked body was stored until
the client stopped. This module moves the same limits (``asgi_limits.body_limit_for``, the same 413
body) into daphne's request object:

* ``gotLength`` -- Twisted calls it once the headers are in, with the declared length (None for
  chunked): a declared length over the path's limit is answered 413 at once and the connection closed;
  no temporary file is created and no body byte is kept;
* ``handleContentChunk`` -- each piece of body as it arrives: the piece that crosses the limit (a
  chunked body, or a client sending more than it declared) gets the same 413.

A refused request never reaches the application. ``install()`` swaps daphne's request class; it is
called by ``fiberstack.asgi`` (which every daphne worker imports before serving), and does nothing when
daphne is not importable. The ASGI middleware stays as the second line for any other ASGI server."""

from __future__ import annotations

from urllib.parse import unquote

from apps.core.asgi_limits import BodyLimit, body_limit_for, too_large_body


def _request_path(target: bytes) -> str:
    """The path of a request target (``/write?db=x`` or an absolute ``http://host/write``), decoded the
    way daphne decodes it for the ASGI scope."""
    path = target.split(b"?", 1)[0].split(b"#", 1)[0]
    if b"://" in path:
        path = b"/" + path.split(b"://", 1)[1].partition(b"/")[2]
    return unquote(path.decode("ascii", "replace"))


def too_large_response(path: str, rule: BodyLimit) -> bytes:
    """The raw HTTP 413 (with ``Connection: close``): the body ``asgi_limits`` sends for the same case."""
    body, content_type = too_large_body(path, rule)
    head = (b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\nServer: daphne\r\n\r\n")
    return head + body


def _limited_request_class(base: type) -> type:
    class LimitedWebRequest(base):  # type: ignore[valid-type, misc]
        """daphne's request, refusing a body over its path's limit as soon as the limit is known to be
        crossed."""

        _body_rule: BodyLimit | None = None
        _body_path = ""
        _body_received = 0
        _body_refused = False

        def gotLength(self, length: int | None) -> None:
            try:
                self._body_path = _request_path(getattr(self.channel, "_path", b"") or b"")
                self._body_rule = body_limit_for(self._body_path)
            except Exception:  # never let the guard break a request; the ASGI middleware still applies
                self._body_rule = None
            if self._body_rule is not None and length is not None and length > self._body_rule.limit:
                self._refuse_body()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            if self._body_refused:
                return
            self._body_received += len(data)
            if self._body_rule is not None and self._body_received > self._body_rule.limit:
                self._refuse_body()
                return
            super().handleContentChunk(data)

        def process(self) -> None:
            if self._body_refused:
                return  # answered already; the application never sees this request
            super().process()

        def _refuse_body(self) -> None:
            import io

            self._body_refused = True
            # No 100 Continue after the 413 (Twisted sends it right after gotLength), no body kept.
            self.requestHeaders.removeHeader(b"expect")
            old, self.content = getattr(self, "content", None), io.BytesIO()
            if old is not None:
                old.close()
            assert self._body_rule is not None
            channel = self.channel
            channel.transport.write(too_large_response(self._body_path, self._body_rule))
            channel.loseConnection()

    LimitedWebRequest.__name__ = LimitedWebRequest.__qualname__ = f"Limited{base.__name__}"
    return LimitedWebRequest


def install() -> bool:
    """Make daphne build its requests with the limits; True when daphne is there (idempotent)."""
    try:
        from daphne import http_protocol
    except ImportError:
        return False
    current = http_protocol.WebRequest
    if not getattr(current, "_fiberstack_body_limit", False):
        limited = _limited_request_class(current)
        limited._fiberstack_body_limit = True  # type: ignore[attr-defined]
        http_protocol.WebRequest = limited  # HTTPFactory.buildProtocol reads the module global
    return True
