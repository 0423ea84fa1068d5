"""OpenAPI schema hooks (drf-spectacular ``PREPROCESSING_HOOKS``).

Some API paths are one plain Django view for both directions: ``/api/v1/metrics``, ``/api/v1/logs`` and
``/api/v1/events`` take POST at the ingest door and hand GET to a DRF read view. drf-spectacular only
describes DRF views, so those read APIs were missing from the schema. A door names its read view with
``read_side(view)``; the hook below adds that view's GET to the schema at the door's path. Core stays below
the domain apps: it finds the doors in the URL conf, it never imports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.generators import EndpointEnumerator

ReadView = Callable[[], Callable[..., Any]]


def read_side(read_view: ReadView) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a combined door: ``read_view()`` returns the DRF view (``as_view()``) serving its GET."""

    def mark(door: Callable[..., Any]) -> Callable[..., Any]:
        door.schema_read_view = read_view  # type: ignore[attr-defined]
        return door

    return mark


class _ReadSides(EndpointEnumerator):
    """Enumerates only the doors marked with ``read_side``, as the GET of their DRF read view."""

    def should_include_endpoint(self, path: str, callback: Any) -> bool:
        return getattr(callback, "schema_read_view", None) is not None

    def get_allowed_methods(self, callback: Any) -> list[str]:
        return ["GET"]


def include_read_sides(endpoints: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """Preprocessing hook: the DRF read views behind combined doors join the other endpoints."""
    doors = _ReadSides()._get_api_endpoints(None, "")
    return [*endpoints, *((path, regex, method, door.schema_read_view()) for path, regex, method, door in doors)]
