"""The per-token rate limit and the body limit (S2 for push: tests/scim/test_held.py)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from config import Settings
from service.scim_tokens import issue_token
from store import Store
from tests.scim.conftest import Scim, make_settings
from web.app import create_app
from web.limits import TokenBuckets


def _client(store: Store, **sections: Any) -> tuple[Settings, Scim]:
    settings = make_settings(store.engine.url.render_as_string(hide_password=False), **sections)
    client = TestClient(create_app(settings, store))
    return settings, Scim(client, "okta", issue_token(settings, store, "okta").token)


def test_requests_beyond_the_burst_get_429_with_retry_after(store: Store) -> None:
    _, okta = _client(store, web={"scim_rate_per_second": 0.01, "scim_burst": 3})

    statuses = [okta.get("/Users").status_code for _ in range(4)]
    last = okta.get("/Users")

    assert statuses == [200, 200, 200, 429]
    assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1
    assert last.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])

    assert [buckets.take("t"), buckets.take("t"), buckets.take("t")] == [None, None, 1]
    now[0] = 0.5
    assert buckets.take("t") is None
    assert buckets.take("other") is None
