"""Hostile frames and query strings at every live page's websocket, through the project's ASGI application
with a real session: a consumer never raises (the websocket's 500), it closes with a proper code, and a
frame naming another organization's objects gets nothing of that organization.

The routes come from ``fiberstack.asgi.websocket_urlpatterns()``, so a live page added later is covered; a
route whose path this module cannot fill in fails (add it to ``PATH_OBJECTS``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.accounts.live import CLOSE_FORBIDDEN, CLOSE_UNSUPPORTED_DATA
from apps.alerts.live import alerts_group
from apps.hosts.live import hosts_group
from apps.logs.live import logs_group
from apps.metrics import live, live_dashboards
from fiberstack.asgi import websocket_urlpatterns
from tests.asgi import signed_in
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = [str(pattern.pattern) for pattern in websocket_urlpatterns()]
#: Path parameter -> the object it names, made in the given organization.
PATH_OBJECTS: dict[str, Callable[[Any], Any]] = {"host_id": lambda org: HostFactory(organization=org)}

FOREIGN = "{foreign}"  # replaced by the other organization's host id
#: (label, frame): text frames as sent, bytes as a binary frame.
FRAMES: list[tuple[str, str | bytes]] = [
    ("not json", "hello"),
    ("truncated json", '{"type": "subscribe"'),
    ("binary", b"\x00\xff\xfe binary"),
    ("empty", ""),
    ("huge", json.dumps({"type": "subscribe", "q": "x" * 1_000_000})),
    ("list", "[1, 2, 3]"),
    ("number", "42"),
    ("null", "null"),
    ("string", '"subscribe"'),
    ("unknown type", '{"type": "no.such.type"}'),
    ("handler name", '{"type": "live.close"}'),
    ("invalid uuid", '{"type": "subscribe", "host": "not-a-uuid"}'),
    ("other org", '{"type": "subscribe", "host": "' + FOREIGN + '", "org": "globex"}'),
    ("deep nesting", "[" * 100_000 + "]" * 100_000),
    ("lone surrogate", '{"q": "\\ud800"}'),
    ("nan", '{"limit": NaN, "n": 1e999}'),
]
#: Query strings a live page's script could be tricked into opening (the logs tail reads its filters).
QUERIES = ["level=%ff", "level=nonsense%2B", "q=%uD800&q=%ED%A0%80", "host=" + "a" * 10_000, "q=%", "level=,,,+"]



def _path(route: str, org: Any, objects: dict[str, Any]) -> str:
    path = route
    for name, obj in objects.items():
        path = path.replace(f"<uuid:{name}>", str(obj.public_id))
    path = path.replace("<slug:org_slug>", org.slug)
    if "<" in path:
        pytest.fail(f"{route}: a path parameter nothing fills: add it to PATH_OBJECTS")
    return "/" + path


async def _open(application: Any, key: str, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[(b"cookie", f"sessionid={key}".encode()),
                                                                     (b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected, path
    return communicator


def _world(org: Any, other_org: Any, owner: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    ours = {name: make(org) for name, make in PATH_OBJECTS.items()}
    theirs = {name: make(other_org) for name, make in PATH_OBJECTS.items()}
    return signed_in(owner)[1], ours, theirs


async def _broadcast_to_every_group_of(org_id: int, host_pk: int) -> None:
    """One event on each live group of an organization (what its own sockets would receive)."""
    layer = get_channel_layer()
    for group, event in ((hosts_group(org_id), {"type": "hosts.update", "hosts": []}),
                         (alerts_group(org_id), {"type": "alerts.update", "alerts": []}),
                         (logs_group(org_id), {"type": "logs.entries", "entries": [
                             {"level": "error", "message": "secret", "host": "db"}]}),
                         (live.host_points_group(org_id, host_pk), {"type": "metrics.points", "points": []}),
                         (live_dashboards.dashboards_group(org_id), {"type": "metrics.names", "names": ["x"]})):
        await layer.group_send(group, event)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_hostile_frame_closes_the_socket_with_1003_and_never_raises(route: str, org: Any, other_org: Any,
                                                                          owner: Any) -> None:
    from fiberstack.asgi import application

    key, ours, theirs = await sync_to_async(_world)(org, other_org, owner)
    path = _path(route, org, ours)
    failures = []
    for label, frame in FRAMES:
        socket = await _open(application, key, path)
        # send_input, not send_to: the communicator itself refuses an empty frame.
        if isinstance(frame, bytes):
            await socket.send_input({"type": "websocket.receive", "bytes": frame})
        else:
            await socket.send_input({"type": "websocket.receive",
                                     "text": frame.replace(FOREIGN, str(theirs["host_id"].public_id))})
        try:
            answer = await socket.receive_output(timeout=2)
        except TimeoutError:
            failures.append(f"{label}: neither answered nor closed")
            continue
        except Exception as exc:
            failures.append(f"{label}: raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if answer != {"type": "websocket.close", "code": CLOSE_UNSUPPORTED_DATA}:
            failures.append(f"{label}: answered {str(answer)[:200]}")
        await socket.disconnect()
    assert not failures, f"{route}:\n" + "\n".join(failures)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_socket_hears_nothing_of_another_organization(route: str, org: Any, other_org: Any,
                                                              owner: Any) -> None:
    """Asking for another organization's objects in a frame closes the socket, and before that nothing the
    other organization's groups carry arrives; the other organization's host id in the path is refused."""
    from fiberstack.asgi import application

    key, ours, theirs = await sync_to_async(_world)(org, other_org, owner)
    socket = await _open(application, key, _path(route, org, ours))
    await _broadcast_to_every_group_of(other_org.pk, theirs["host_id"].pk)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.send_to(text_data=json.dumps({"type": "subscribe", "host": str(theirs["host_id"].public_id),
                                               "organization": other_org.slug}))
    await _broadcast_to_every_group_of(other_org.pk, theirs["host_id"].pk)
    assert await socket.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_UNSUPPORTED_DATA}
    await socket.disconnect()
    if any(f"<uuid:{name}>" in route for name in PATH_OBJECTS):
        foreign = await _open(application, key, _path(route, org, theirs))
        assert await foreign.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


@pytest.mark.parametrize("route", ROUTES)
async def test_a_hostile_query_string_never_crashes_the_consumer(route: str, org: Any, other_org: Any,
                                                                 owner: Any) -> None:
    """The socket opens (or is refused) and keeps relaying its own organization's events."""
    from fiberstack.asgi import application

    key, ours, _ = await sync_to_async(_world)(org, other_org, owner)
    path = _path(route, org, ours)
    for query in QUERIES:
        socket = await _open(application, key, f"{path}?{query}")
        await _broadcast_to_every_group_of(org.pk, ours["host_id"].pk)
        # receive_nothing, not receive_output: a receive_output that times out cancels the application.
        while not await socket.receive_nothing(timeout=0.3):  # whatever it relays, until it goes quiet
            answer = await socket.receive_output(timeout=1)
            assert answer["type"] == "websocket.send", f"{route}?{query}: {answer}"
        if socket.future.done() and socket.future.exception() is not None:
            exc = socket.future.exception()
            pytest.fail(f"{route}?{query}: raised {type(exc).__name__}: {exc}")
        await socket.disconnect()
