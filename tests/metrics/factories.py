"""Factories and helpers for metrics tests: series rows, raw-sample counts, and posting real agent
bodies (from tests/fixtures) through the HTTP doors with their exact headers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import factory
from django.db import connection
from django.test import Client

from apps.metrics.models import Series, series_key_hash
from tests.organizations.factories import OrganizationFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_SKIP_HEADERS = {"content-length", "_method_path"}


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Series

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"metric_{n}")
    labels = factory.LazyFunction(dict)
    key_hash = factory.LazyAttribute(lambda o: series_key_hash(o.name, tuple(sorted(o.labels.items()))))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_headers(name: str) -> dict[str, str]:
    """The captured request headers of a fixture body as Django test-client META keys."""
    raw = json.loads((FIXTURES / name).read_text())
    meta: dict[str, str] = {}
    for header, value in raw.items():
        lower = header.lower()
        if lower in _SKIP_HEADERS:
            continue
        if lower == "content-type":
            meta["CONTENT_TYPE"] = value
        else:
            meta["HTTP_" + header.upper().replace("-", "_")] = value
    return meta


def post(path: str, body: bytes | str, *, token: str | None = None, content_type: str = "text/plain",
         basic: str | None = None, **meta: Any) -> Any:
    """POST a raw body with a bearer token (or basic auth with the token as password)."""
    if token is not None:
        meta.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    if basic is not None:
        import base64

        meta["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"x:{basic}".encode()).decode()
    meta.setdefault("CONTENT_TYPE", content_type)
    data = body.encode() if isinstance(body, str) else body
    # Agents never send a CSRF token: enforcing the check proves every door is exempt.
    return Client(enforce_csrf_checks=True).generic("POST", path, data=data, **meta)


def sample_count(organization: Any = None, name: str | None = None) -> int:
    """Rows in the raw table (for one organization / metric name when given)."""
    sql = "SELECT count(*) FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id WHERE true"
    params: list[Any] = []
    if organization is not None:
        sql += " AND r.organization_id = %s"
        params.append(organization.pk)
    if name is not None:
        sql += " AND r.name = %s"
        params.append(name)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def samples_of(series: Series) -> list[tuple[float, float]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM time)::float8, value FROM metrics_sample WHERE series_id = %s "
                       "ORDER BY time", [series.id])
        return cursor.fetchall()
