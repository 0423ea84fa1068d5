"""No body, encoding or query string makes an ingest door answer 5xx (hypothesis, through HTTP)."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.metrics.factories import post

pytestmark = pytest.mark.django_db

PATHS = ["/write", "/api/v2/write", "/api/v1/write", "/api/v1/prom/write", "/api/v1/collectd", "/api/v1/metrics",
         "/api/push", "/api/v1/agents/h/metrics"]
LINEISH = st.text(alphabet=st.sampled_from(list('cpu,host=a v=1i 17e9"\\\n #tf.-:{}[]'))) | st.binary(max_size=300)


@pytest.mark.parametrize("path", PATHS)
def test_random_bodies_never_5xx(path: str, write_token: str) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=LINEISH, encoding=st.sampled_from(["", "gzip", "snappy", "br"]), gz=st.booleans(),
           precision=st.sampled_from(["", "s", "h", "ns", "x"]))
    def check(body: Any, encoding: str, gz: bool, precision: str) -> None:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        if gz:
            data = gzip.compress(data)
        response = post(f"{path}?precision={precision}", data, token=write_token,
                        HTTP_CONTENT_ENCODING=encoding, content_type="application/octet-stream")
        assert response.status_code < 500, response.content
        if response.status_code >= 400:
            assert response.json()["error"]

    check()
