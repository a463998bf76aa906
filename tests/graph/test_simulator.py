"""The Graph simulator's own promises: Graph's error bodies, paging limits, throttling by
resource units, bearer checks and delta-token expiry, seen with a plain HTTPS client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from simulators.graph import GraphSimulator, GraphTenant
from simulators.graph_throttle import budget_for


@pytest.fixture
def http(sim: GraphSimulator) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = sim.ca_path
    t = sim.tenant
    token = session.post(f"{sim.base_url}/{t.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": t.client_id,
        "client_secret": t.client_secret, "scope": f"{sim.graph_url}/.default",
    }).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    yield session
    session.close()


def _get(http: requests.Session, sim: GraphSimulator, path: str) -> tuple[int, Any]:
    response = http.get(sim.graph_url + path)
    return response.status_code, response.json()


def test_requests_without_a_valid_token_get_invalid_authentication_token(
    sim: GraphSimulator,
) -> None:
    response = requests.get(f"{sim.graph_url}/v1.0/users", verify=sim.ca_path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_list_pages_follow_next_links_with_top_and_select(sim: GraphSimulator,
                                                         http: requests.Session) -> None:
    status, page = _get(http, sim, "/v1.0/users?$top=15&$select=id,mail")
    ids = [u["id"] for u in page["value"]]
    while "@odata.nextLink" in page:
        page = http.get(page["@odata.nextLink"]).json()
        ids += [u["id"] for u in page["value"]]

    assert status == 200
    assert sorted(ids) == sorted(sim.tenant.users)
    assert set(page["value"][0]) == {"id", "mail"}


@pytest.mark.parametrize("top", ["0", "1000", "x"])
def test_top_outside_1_to_999_is_a_bad_request(sim: GraphSimulator, http: requests.Session,
                                               top: str) -> None:
    status, body = _get(http, sim, f"/v1.0/users?$top={top}")

    assert status == 400
    assert "between 1 and 999" in body["error"]["message"]


def test_id_filter_allows_at_most_15_values(sim: GraphSimulator, http: requests.Session) -> None:
    ids = ",".join(f"'{u}'" for u in sim.tenant.user_order[:16])

    status, body = _get(http, sim, f"/v1.0/users?$filter=id in ({ids})")

    assert status == 400
    assert "Max allowed: 15" in body["error"]["message"]


def test_unknown_delta_token_is_gone_with_sync_state_not_found(
    sim: GraphSimulator, http: requests.Session
) -> None:
    status, body = _get(http, sim, "/v1.0/users/delta?$deltatoken=bogus")

    assert status == 410
    assert body["error"]["code"] == "syncStateNotFound"


def test_deltatoken_latest_returns_only_a_delta_link(sim: GraphSimulator,
                                                     http: requests.Session) -> None:
    _, body = _get(http, sim, "/v1.0/users/delta?$deltatoken=latest&$select=id")
    sim.tenant.hire("late@contoso.example")

    later = http.get(body["@odata.deltaLink"]).json()

    assert body["value"] == []
    assert [u.get("userPrincipalName") for u in later["value"]] == [None]
    assert len(later["value"]) == 1


def test_resource_unit_budget_answers_429_with_retry_after(sim: GraphSimulator,
                                                          http: requests.Session) -> None:
    sim.throttle_budget = 5  # GET users costs 2 without $select

    statuses = [http.get(f"{sim.graph_url}/v1.0/users").status_code for _ in range(3)]
    throttled = http.get(f"{sim.graph_url}/v1.0/users")

    assert statuses == [200, 200, 429]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert "ResourceUnitLimitExceeded" in throttled.headers["x-ms-throttle-information"]


def test_budget_follows_graphs_tenant_sizes() -> None:
    assert (budget_for(10), budget_for(300), budget_for(5000)) == (3500, 5000, 8000)


def test_generator_is_deterministic_for_a_seed() -> None:
    a = GraphTenant.generate(users=200, groups=10, memberships=500, seed=9)
    b = GraphTenant.generate(users=200, groups=10, memberships=500, seed=9)

    assert a.user_order == b.user_order
    assert {g: a.groups[g].members for g in a.group_order} == \
        {g: b.groups[g].members for g in b.group_order}


def test_created_date_time_comes_only_when_selected_and_hires_are_stamped_by_the_tenant_clock(
    sim: GraphSimulator, http: requests.Session,
) -> None:
    t = sim.tenant
    t.clock = lambda: datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    hired = t.hire("stamped@contoso.example")
    t.update_user(hired, given_name="Renamed")  # an update leaves the stamp as it was

    _, plain = _get(http, sim, f"/v1.0/users?$filter=id eq '{hired}'")
    _, chosen = _get(http, sim, f"/v1.0/users?$filter=id eq '{hired}'&$select=id,createdDateTime")

    assert "createdDateTime" not in plain["value"][0]
    assert chosen["value"] == [{"id": hired, "createdDateTime": "2026-03-02T09:30:00Z"}]
