"""ASGI entry point: HTTP through Django (its handler running the middleware and the view in one worker-thread
call per request, apps/core/asgi_handler.py; behind the body-size limit of apps/core/asgi_limits.py, which
must run outside Django's handler because that handler buffers the whole body first, and of
apps/core/daphne_limits.py inside daphne, which buffers it even before that), websockets
through Channels with session auth.

Each app with live pages contributes `websocket_urlpatterns` in its routing.py; consumers check
organization membership themselves (DESIGN "Live dashboards")."""

from __future__ import annotations

import gc
import importlib
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiberstack.settings.dev")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does before its handler

from apps.core.asgi_handler import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from apps.core import daphne_limits  # noqa: E402
from apps.core.asgi_limits import RequestBodyLimit  # noqa: E402

# daphne buffers a whole body before calling the application: its requests enforce the limits themselves.
daphne_limits.install()

LIVE_APPS = ("apps.hosts", "apps.metrics", "apps.logs", "apps.alerts")


def websocket_urlpatterns() -> list:
    patterns: list = []
    for app in LIVE_APPS:
        try:
            routing = importlib.import_module(f"{app}.routing")
        except ModuleNotFoundError:
            continue
        patterns.extend(routing.websocket_urlpatterns)
    return patterns


application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns()))),
    }
)

# Import every view now rather than on the first request, then move everything loaded so far (which lives as
# long as the process) out of the garbage collector's reach: a full collection, which a page of 100 hosts
# triggers every ten or so requests, then scans what requests allocate instead of ~200,000 long-lived
# objects -- a pause of ~115 ms of CPU per collection down to ~3 ms (bench/pages.py, bench/README.md).
get_resolver().url_patterns  # noqa: B018 - the attribute access imports the URLconf
gc.freeze()
