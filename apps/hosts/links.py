"""Links to host pages for pages that list many hosts: ``reverse()`` resolves the pattern once per page,
not once per row (a thousand ``reverse()`` calls cost a listing tens of milliseconds)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.urls import reverse

_MARKER = uuid.UUID(int=0)


def host_detail_url(org_slug: str) -> Callable[[Any], str]:
    """A function public_id -> that host's page URL in ``org_slug``, equal to ``reverse("hosts:detail", …)``."""
    head, _, tail = reverse("hosts:detail", args=[org_slug, _MARKER]).partition(str(_MARKER))
    return lambda public_id: f"{head}{public_id}{tail}"
