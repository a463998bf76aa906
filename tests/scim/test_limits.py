"""S2 for push (a rolling hour of deactivations), the per-token rate limit, the body limit."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from config import Settings
from service.scim_hold import approve_held, held_requests, reject_held
from service.scim_tokens import issue_token
from store import Store, export_state, get_run
from tests.scim.conftest import Scim, make_settings
from web.app import create_app
from web.limits import TokenBuckets


def _client(store: Store, **sections: Any) -> tuple[Settings, Scim]:
    settings = make_settings(store.engine.url.render_as_string(hide_password=False), **sections)
    client = TestClient(create_app(settings, store))
    return settings, Scim(client, "okta", issue_token(settings, store, "okta").token)


def _active(store: Store) -> dict[str, bool]:
    with store.session() as session:
        return {u["email"]: u["active"] for u in export_state(session)["users"]}


@pytest.fixture
def limited(store: Store) -> tuple[Settings, Scim, list[dict]]:
    settings, okta = _client(store, safety={"max_deactivations": 2, "max_deactivation_ratio": 1.0})
    return settings, okta, [okta.create_user(f"u{n}@example.com") for n in range(4)]


def _deactivate(okta: Scim, user: dict) -> Any:
    return okta.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"active": False}}])


def test_deactivations_beyond_the_limit_in_an_hour_are_held_with_503(store: Store, limited) -> None:
    _, okta, users = limited
    assert [_deactivate(okta, u).status_code for u in users[:2]] == [200, 200]

    held = _deactivate(okta, users[2])

    assert held.status_code == 503
    assert int(held.headers["retry-after"]) > 0
    assert held.json()["detail"].startswith("S2: 3 deactivations in an hour exceed max_deactivations = 2")
    assert _active(store)["u2@example.com"] is True
    [request] = held_requests(store, "okta")
    assert request.deactivations == ("u2@example.com",)
    assert request.request == f"PATCH /Users/{users[2]['id']}"


def test_delete_counts_as_a_deactivation(store: Store, limited) -> None:
    _, okta, users = limited
    for user in users[:2]:
        _deactivate(okta, user)

    response = okta.delete(f"/Users/{users[3]['id']}")

    assert response.status_code == 503
    assert okta.get(f"/Users/{users[3]['id']}").status_code == 200


def test_approving_a_held_request_applies_it(store: Store, limited) -> None:
    settings, okta, users = limited
    for user in users[:2]:
        _deactivate(okta, user)
    _deactivate(okta, users[2])
    [request] = held_requests(store, "okta")

    result = approve_held(settings, store, request.run_id)

    assert result.applied == 1
    assert _active(store)["u2@example.com"] is False
    assert held_requests(store, "okta") == []
    assert _deactivate(okta, users[2]).status_code == 200  # the IdP's retry finds it done


def test_rejecting_a_held_request_applies_nothing(store: Store, limited) -> None:
    _, okta, users = limited
    for user in users[:3]:
        _deactivate(okta, user)
    [request] = held_requests(store, "okta")

    reject_held(store, request.run_id)

    assert _active(store)["u2@example.com"] is True and held_requests(store, "okta") == []
    with store.session() as session:
        assert get_run(session, request.run_id).status == "failed"


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


def test_held_cli_lists_and_approves(ws) -> None:
    assert ws.run("scim", "held").out.strip() == "no held SCIM requests"
    assert ws.run("scim", "approve", "99").code == 4
