"""``latest``: each series' newest value -- from the hot tier (Redis), and for what it lacks (Redis down,
evicted, never written) from the raw samples in PostgreSQL. The read API's ``/metrics/latest`` and the
host list's current CPU/memory/load read it here, so the fallback exists once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.metrics import hot, retention
from apps.metrics.storage.compressed import RAW_SOURCE, read_params


def latest(organization: Any, series_ids: Sequence[int]) -> dict[int, tuple[float, float]]:
    """series id -> (epoch seconds, value) of the organization's ``series_ids`` (already scoped to it);
    series without a sample within raw retention are absent."""
    found = hot.latest_values(organization.pk, series_ids)
    missing = [sid for sid in series_ids if sid not in found]
    if missing:
        found.update(_latest_from_raw(missing, retention.visible_since(organization, "raw")))
    return found


def _latest_from_raw(series_ids: list[int], since: dt.datetime) -> dict[int, tuple[float, float]]:
    # Raw rows and compressed chunks alike (RAW_SOURCE); newest first, stop at one per series.
    sql = f"""SELECT i.id, x.t, x.value FROM unnest(%(ids)s::int[]) AS i(id)
        CROSS JOIN LATERAL (SELECT extract(epoch FROM time)::float8 AS t, value FROM {RAW_SOURCE} AS raw
                            WHERE series_id = i.id AND time >= %(since)s ORDER BY time DESC LIMIT 1) AS x"""  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:  # one state of chunks and rows (read_params)
        params = read_params(cursor, since, timezone.now(), series_ids)
        cursor.execute(sql, {"ids": series_ids, "since": since, **params})
        return {sid: (t, v) for sid, t, v in cursor.fetchall()}
