"""Django's ASGI handler, with the middleware chain and the view run in one worker-thread call.

Django's own ``ASGIHandler`` builds the chain in async mode. Every middleware here is sync (ours, WhiteNoise,
django-otp), and Django's ``MiddlewareMixin`` classes in async mode call their sync hooks through
``sync_to_async``, so one request switched between the event loop and its worker thread eleven times:
the outer middleware, back to the loop for the inner ones, ``MessageMiddleware`` twice, ``XFrameOptions``
once, three ``process_view`` hooks (CSRF, organization, two-factor), the view, plus the request-started
signal and the response's ``close``. Each switch is a cross-thread hand-over with context copies; together
they were most of the per-request floor every API call pays (bench/README.md, "The request floor").

Here the chain is built in sync mode -- the mode WSGI and Django's test ``Client`` use, so the suite tests
the chain production runs -- and ``get_response`` runs in one ``sync_to_async`` call, on the request's
thread-sensitive executor as before (one thread per request, database connections per thread). Reading the
body, sending the response and watching for a disconnect stay on the event loop, unchanged. An ``async
def`` view would now run through ``async_to_sync``; there is none (websockets go through Channels, not
this handler)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    """``ASGIHandler`` whose middleware chain and view run in one worker-thread call per request."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        # As ASGIHandler: the ASGI server chunks file responses itself.
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response
