"""Series admin: read-only rows; deleting one or many goes through `delete_series` (audited, evicted
from the resolver's Redis hash, the hot tier and the read catalogue)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_redis import get_redis_connection

from apps.audit.models import AuditEvent
from apps.hosts.cache_scope import org_scope
from apps.metrics import hot, series
from apps.metrics.models import Series
from tests.hosts.factories import HostFactory
from tests.metrics.factories import SeriesFactory
from tests.organizations.factories import UserFactory

# Caches are evicted after commit, so transactions really commit here.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _cached(org: Any, made: Series) -> None:
    """Put a series where ingest would have cached it: the resolver's hash and the hot tier."""
    redis = get_redis_connection("default")
    redis.hset(series.redis_key(org_scope(org)), bytes(made.key_hash), made.pk)
    hot.store_latest(org.pk, {made.pk: (1_700_000_000_000_000, 1.0)}, {made.pk: made.host_id})


def _still_cached(org: Any, made: Series) -> list[str]:
    redis = get_redis_connection("default")
    where = []
    if redis.hget(series.redis_key(org_scope(org)), bytes(made.key_hash)) is not None:
        where.append("resolver")
    if hot.latest_values(org.pk, [made.pk]):
        where.append("hot")
    if made.host_id is not None and made.pk in hot.latest_for_host(org.pk, made.host_id):
        where.append("hot-host")
    return where


def test_series_change_page_is_read_only(admin_client_, org):
    made = SeriesFactory(organization=org, name="cpu")
    page = admin_client_.get(f"/admin/metrics/series/{made.pk}/change/")
    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()
    admin_client_.post(f"/admin/metrics/series/{made.pk}/change/", {"name": "renamed"})
    assert Series.objects.get(pk=made.pk).name == "cpu"


def test_admin_delete_goes_through_the_service(admin_client_, api_client, owner, org):
    host = HostFactory(organization=org, name="web-1")
    made = SeriesFactory(organization=org, name="cpu", labels={"host": "web-1"}, host=host)
    _cached(org, made)
    reader = api_client(user=owner)
    assert len(reader.get("/api/v1/metrics?name=cpu").json()["series"]) == 1

    response = admin_client_.post(f"/admin/metrics/series/{made.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Series.objects.filter(pk=made.pk).exists()
    event = AuditEvent.objects.get(action="series.deleted")
    assert (event.object_id, event.organization_id, event.actor_repr) == (str(made.public_id), org.pk, "root")
    assert event.changes["name"] == ["cpu", None]
    assert _still_cached(org, made) == []
    assert reader.get("/api/v1/metrics?name=cpu").json()["series"] == []


def test_admin_bulk_delete_action_goes_through_the_service(admin_client_, org, other_org):
    doomed = [SeriesFactory(organization=org, name=f"m{n}") for n in range(2)]
    doomed.append(SeriesFactory(organization=other_org, name="theirs"))
    keep = SeriesFactory(organization=org, name="keep")
    for made in [*doomed, keep]:
        _cached(made.organization, made)
    response = admin_client_.post("/admin/metrics/series/", {
        "action": "delete_selected", "_selected_action": [s.pk for s in doomed], "post": "yes"})
    assert response.status_code == 302
    assert list(Series.objects.values_list("name", flat=True)) == ["keep"]
    audited = dict(AuditEvent.objects.filter(action="series.deleted").values_list("object_id", "organization_id"))
    assert audited == {str(s.public_id): s.organization_id for s in doomed}
    assert all(_still_cached(s.organization, s) == [] for s in doomed)
    assert _still_cached(org, keep) == ["resolver", "hot"]
