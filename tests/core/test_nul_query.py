"""A NUL character (U+0000) in a query parameter is a 400 naming the parameter on every page and endpoint,
before any view runs: PostgreSQL's text refuses it, and the host list and alert list filters (``?q=``,
``?tag=``) were 500s with it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

NUL = "web\x00"


@pytest.mark.parametrize("path", ["/{org}/hosts/", "/{org}/alerts/", "/{org}/logs/", "/{org}/", "/{org}/rules/"])
@pytest.mark.parametrize("parameter", ["q", "tag", "state", "host"])
def test_a_page_answers_400_in_plain_text(client: Client, owner: Any, org: Any, path: str, parameter: str) -> None:
    client.force_login(owner)
    response = client.get(path.format(org=org.slug), {parameter: NUL}, headers={"accept": "text/html"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == f"{parameter}: text may not contain the NUL character (U+0000)."


def test_the_same_pages_answer_without_the_nul(client: Client, owner: Any, org: Any) -> None:
    client.force_login(owner)
    for path in (f"/{org.slug}/hosts/", f"/{org.slug}/alerts/"):
        assert client.get(path, {"q": "web", "tag": "role:db"}).status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/alerts", "/api/v1/logs", "/api/v1/hosts"])
def test_an_api_client_gets_json_naming_the_parameter(api_client: Any, owner: Any, url: str) -> None:
    response = api_client(user=owner).get(url, {"ok": "1", "q\x00": "x"})
    assert response.status_code == 400
    message = "q\\x00: text may not contain the NUL character (U+0000)."
    assert response.json() == {"error": message, "code": "invalid", "message": message, "detail": message,
                               "parameter": "q\\x00"}
