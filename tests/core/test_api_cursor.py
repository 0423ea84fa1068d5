"""A ``cursor`` the API cannot read is a 400 naming the parameter on every cursor-paginated list (DRF
answered 404 "Invalid cursor", as if the list did not exist); a cursor the list handed out still pages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts.factories import AlertFactory
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db

MESSAGE = "cursor is not a cursor this list handed out: pass the next or previous link's cursor unchanged."


@pytest.mark.parametrize(("url", "cursor"), [
    *[(url, cursor) for url in ("/api/v1/alerts", "/api/v1/hosts", "/api/v1/series")
      for cursor in ("garbage", "%%%")],  # not base64 (DRF's 404); decodes to nothing (was the first page)
    ("/api/v1/alerts", "cD0yMDI2"), ("/api/v1/hosts", "cD0yMDI2"),  # p=2026: no date (a 400 naming no parameter)
])
def test_an_unreadable_cursor_is_a_400_naming_it(api_client: Any, owner: Any, url: str, cursor: str) -> None:
    response = api_client(user=owner).get(url, {"cursor": cursor})
    assert response.status_code == 400
    assert response.json() == {"cursor": [MESSAGE]}


def test_a_cursor_the_list_handed_out_still_pages(api_client: Any, owner: Any, org: Any) -> None:
    AlertFactory.create_batch(2, organization=org)
    HostFactory.create_batch(2, organization=org)
    client = api_client(user=owner)
    for url in ("/api/v1/alerts", "/api/v1/hosts"):
        first = client.get(url, {"page_size": 1}).json()
        second = client.get(first["next"])
        assert second.status_code == 200, second.content
        assert len(second.json()["results"]) == 1
        assert second.json()["results"][0] != first["results"][0]


@pytest.mark.parametrize("url", ["/api/v1/alerts", "/api/v1/series"])
@pytest.mark.parametrize("page_size", ["abc", "0", "-1", "1.5"])
def test_an_unreadable_page_size_is_a_400_naming_it(api_client: Any, owner: Any, url: str, page_size: str) -> None:
    response = api_client(user=owner).get(url, {"page_size": page_size})  # was the default page size
    assert response.status_code == 400
    assert response.json() == {"page_size": [f"page_size must be a whole number from 1, not {page_size!r}."]}


def test_a_page_size_above_the_maximum_is_cut_to_it(api_client: Any, owner: Any, org: Any) -> None:
    AlertFactory.create_batch(2, organization=org)
    client = api_client(user=owner)
    assert len(client.get("/api/v1/alerts", {"page_size": "9" * 30}).json()["results"]) == 2
    assert len(client.get("/api/v1/alerts", {"page_size": ""}).json()["results"]) == 2
