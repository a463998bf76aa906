"""The admin API on a running simulator: each action changes the org or tenant through its
own admin methods, so connectors see it as the vendor shows it; admin requests stay out of
the instrumentation and need the admin token."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from simulators import admin
from simulators.base import SimulatorServer
from simulators.faults import Fault
from simulators.graph import GraphSimulator, GraphTenant
from simulators.okta import OktaOrg, OktaSimulator


def call(sim: SimulatorServer, action: str, body: dict[str, Any] | None = None,
         token: str | None = None) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=sim.ca_path)
    connection = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=30)
    connection.request("GET" if body is None else "POST", f"/_admin/{action}",
                       None if body is None else json.dumps(body),
                       {"Authorization": f"Bearer {token or sim.admin_token}"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


@pytest.fixture
def okta() -> Iterator[OktaSimulator]:
    org = OktaOrg.generate(users=12, groups=3, memberships=20, seed=4, app_users=2, app_groups=1)
    with OktaSimulator(org) as sim:
        sim.new_admin_token()
        admin.install(sim)
        yield sim


@pytest.fixture
def entra() -> Iterator[GraphSimulator]:
    with GraphSimulator(GraphTenant.generate(users=12, groups=3, memberships=20, seed=4)) as sim:
        sim.new_admin_token()
        admin.install(sim)
        yield sim


def events_since(org: OktaOrg, position: int) -> list[tuple[str, str]]:
    return [(e["eventType"], e["target"][0]["id"]) for e in org.events[position:]]


def test_okta_mass_deactivation_of_a_group_logs_one_deactivation_per_member(okta: OktaSimulator) -> None:
    org = okta.org
    team = next(g for g in org.group_ids if org.groups[g]["profile"]["name"] == "Team 0001")
    members = org.sorted_members(team)
    position = len(org.events)

    status, answer = call(okta, "disable-user", {"group": "Team 0001"})

    assert (status, answer["changed"]) == (200, len(members))
    assert all(org.users[u]["status"] == "DEPROVISIONED" for u in members)
    deactivations = [target for kind, target in events_since(org, position) if kind == "user.lifecycle.deactivate"]
    assert deactivations == members


def test_okta_rename_moves_lastupdated_and_logs_a_profile_update(okta: OktaSimulator) -> None:
    org = okta.org
    team = next(g for g in org.group_ids if org.groups[g]["profile"]["name"] == "Team 0002")
    org.groups[team]["lastUpdated"] = "2000-01-01T00:00:00.000Z"
    position = len(org.events)

    assert call(okta, "rename-group", {"group": team, "name": "Platform"})[0] == 200

    assert org.groups[team]["profile"]["name"] == "Platform"
    assert org.groups[team]["lastUpdated"] > "2000-01-01T00:00:00.000Z"
    assert events_since(org, position) == [("group.profile.update", team)]


def test_okta_add_move_assign_and_delete_a_user(okta: OktaSimulator) -> None:
    org = okta.org
    assert call(okta, "add-user", {"email": "zed@example.com", "groups": ["Team 0000"]})[0] == 200
    zed = next(u for u in org.user_ids if org.users[u]["profile"]["email"] == "zed@example.com")
    assert zed in org.members[org.group_ids[1]]

    assert call(okta, "move-user", {"users": ["zed@example.com"], "from": "Team 0000", "to": "Team 0002"})[0] == 200
    assert zed not in org.members[org.group_ids[1]] and zed in org.members[org.group_ids[3]]

    assert call(okta, "add-user", {"email": "amy@example.com"})[0] == 200  # in no assigned group
    amy = org.user_ids[-1]
    position = len(org.events)
    assert call(okta, "assign", {"users": ["amy@example.com"]})[0] == 200
    assert events_since(org, position) == [("application.user_membership.add", amy)]
    assert call(okta, "unassign", {"users": ["amy@example.com"]})[0] == 200
    assert amy not in org.app_user_ids(org.app_id or "")[0]

    assert call(okta, "delete-user", {"users": ["zed@example.com"]})[0] == 200
    assert zed not in org.users
    assert call(okta, "delete-group", {"group": "Team 0002"})[0] == 200
    assert "Team 0002" not in {g["profile"]["name"] for g in org.groups.values()}


def test_entra_changes_come_back_in_the_next_delta_round(entra: GraphSimulator) -> None:
    tenant = entra.tenant
    users_link = entra.delta.latest("u", ["id", "accountEnabled"]).delta_token
    groups_link = entra.delta.latest("g", ["id", "displayName"]).delta_token
    assert users_link is not None and groups_link is not None
    first = tenant.users[tenant.user_order[0]]

    call(entra, "disable-user", {"users": [first.user_principal_name]})
    call(entra, "rename-group", {"group": "Group 00001", "name": "Platform"})

    users = entra.delta.resume_delta(users_link).items
    groups = entra.delta.resume_delta(groups_link).items
    assert [(u["id"], u["accountEnabled"]) for u in users] == [(first.id, False)]
    assert [g["displayName"] for g in groups] == ["Platform"]


def test_entra_assign_and_unassign_change_app_role_assignments(entra: GraphSimulator) -> None:
    tenant = entra.tenant
    group = tenant.group_order[2]
    call(entra, "assign", {"groups": [group], "users": ["user000003@contoso.example"]})
    assert set(tenant.assignments) == {group, tenant.user_order[3]}
    call(entra, "unassign", {"groups": [group]})
    assert set(tenant.assignments) == {tenant.user_order[3]}


def test_unknown_names_are_404_and_bad_bodies_400(okta: OktaSimulator) -> None:
    assert call(okta, "disable-user", {"users": ["nobody@example.com"]}) == (404, {"error": "no user 'nobody@example.com'"})
    assert call(okta, "rename-group", {"group": "Team 0000"})[0] == 400
    assert call(okta, "no-such-action", {})[0] == 404


def test_admin_requests_need_the_admin_token_and_the_api_token_is_not_it(okta: OktaSimulator) -> None:
    assert call(okta, "info", token="wrong")[0] == 401
    assert call(okta, "info", token=okta.api_token)[0] == 401
    assert call(okta, "info") == (200, {"kind": "okta", "users": 12, "groups": 4})


def test_admin_requests_are_not_counted_logged_or_faulted(okta: OktaSimulator) -> None:
    okta.inject(Fault.HTTP_503, at=1)
    assert call(okta, "disable-user", {"users": [okta.org.user_ids[0]]})[0] == 200
    assert (okta.counts(), okta.requests(), okta.pending_faults()) == ({}, [], 1)


def test_a_simulator_without_an_admin_token_has_no_admin_api() -> None:
    with OktaSimulator(OktaOrg()) as sim:
        admin.install(sim)
        assert call(sim, "info", token="anything")[0] == 404
