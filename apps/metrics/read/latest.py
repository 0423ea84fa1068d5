"""``latest``: each series' newest value -- from the hot tier (Redis), and for what it lacks (Redis down,
evicted, never written) from the raw samples in PostgreSQL. The read API's ``/metrics/latest`` and the
host list's current CPU/memory/load read it here, so the fallback exists once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import connection

from apps.metrics import hot, retention
from apps.metrics.storage import TABLE as RAW_TABLE


def latest(organization: Any, series_ids: Sequence[int]) -> dict[int, tuple[float, float]]:
    """series id -> (epoch seconds, value) of the organization's ``series_ids`` (already scoped to it);
    series without a sample within raw retention are absent."""
    found = hot.latest_values(organization.pk, series_ids)
    missing = [sid for sid in series_ids if sid not in found]
    if missing:
        found.update(_latest_from_raw(missing, retention.visible_since(organization, "raw")))
    return found


def _latest_from_raw(series_ids: list[int], since: dt.datetime) -> dict[int, tuple[float, float]]:
    # One index probe per series on (series_id, time): newest row first, stop at one.
    sql = f"""SELECT i.id, x.t, x.value FROM unnest(%s::int[]) AS i(id)
        CROSS JOIN LATERAL (SELECT extract(epoch FROM time)::float8 AS t, value FROM {RAW_TABLE}
                            WHERE series_id = i.id AND time >= %s ORDER BY time DESC LIMIT 1) AS x"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [series_ids, since])
        return {sid: (t, v) for sid, t, v in cursor.fetchall()}
