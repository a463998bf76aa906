"""Provision on demand: `read_user` reads one user and their in-scope groups, and agrees with
what a full read says about that user, in a handful of requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.okta import OktaOrg, OktaSimulator
from reconcile.cycle import sync_user
from reconcile.model import Changes, ExternalGroup, Snapshot
from store import Store, open_store
from store.export import export_state
from tests.okta.conftest import MakeConnector
from tests.okta.test_cycle import settings_for

GroupView = dict[str, tuple[str | None, frozenset[str]]]


def groups_of(groups: tuple[ExternalGroup, ...]) -> GroupView:
    return {g.external_id: (g.name, g.member_ids) for g in groups}


def narrowed(snapshot: Snapshot, uid: str) -> tuple[dict[str, bool], GroupView]:
    """What a full read says about one user: their record and the groups that list them."""
    users = {u.external_id: u.active for u in snapshot.users if u.external_id == uid}
    return users, groups_of(tuple(g for g in snapshot.groups if uid in g.member_ids))


def seen(changes: Changes) -> tuple[dict[str, bool], GroupView]:
    assert changes.members_complete == frozenset(g.external_id for g in changes.groups)
    assert changes.watermark is None
    return {u.external_id: u.active for u in changes.users}, groups_of(changes.groups)


def test_each_user_read_alone_matches_the_full_read_org_wide(make_connector: MakeConnector, org: OktaOrg) -> None:
    connector = make_connector()
    snapshot = connector.read(None)
    assert isinstance(snapshot, Snapshot)
    for uid in org.user_ids:
        email = org.users[uid]["profile"]["email"]
        expected = narrowed(snapshot, uid) if org.users[uid]["status"] != "STAGED" else ({}, {})

        assert seen(connector.read_user(email)) == expected, email
        assert seen(connector.read_user(uid)) == expected, uid


def test_each_user_read_alone_matches_the_full_read_in_app_scope(make_connector: MakeConnector, org: OktaOrg) -> None:
    assert org.app_id is not None
    connector = make_connector(app_id=org.app_id)
    snapshot = connector.read(None)
    assert isinstance(snapshot, Snapshot)
    in_scope = {u.external_id for u in snapshot.users}
    assert 0 < len(in_scope) < len(org.user_ids)
    for uid in org.user_ids:
        email = org.users[uid]["profile"]["email"]
        expected = narrowed(snapshot, uid) if uid in in_scope else ({}, {})

        assert seen(connector.read_user(email)) == expected, email


def test_groups_the_caller_holds_complete_are_not_read_again(
    make_connector: MakeConnector, org: OktaOrg, sim: OktaSimulator
) -> None:
    uid = next(u for u in org.user_ids if len([g for g in org.group_ids if u in org.members[g]]) >= 2
               and org.users[u]["status"] == "ACTIVE")
    connector = make_connector()
    everything = connector.read_user(uid)
    known = sorted(g.external_id for g in everything.groups)[0]
    before = max(r.index for r in sim.requests())

    found = connector.read_user(uid, known_groups={known})

    member_lists = {r.target.split("/")[4] for r in sim.requests() if r.index > before and r.endpoint == "groups.users"}
    assert known not in member_lists
    assert groups_of(found.groups) == {k: v for k, v in groups_of(everything.groups).items() if k != known}
    assert found.members_complete == frozenset(g.external_id for g in found.groups)


def test_a_user_outside_the_app_but_in_an_unassigned_group_is_not_found(
    make_connector: MakeConnector, org: OktaOrg
) -> None:
    assert org.app_id is not None
    unassigned = next(g for g in org.group_ids if g not in org.app_groups[org.app_id] and g != org.everyone_id)
    uid = org.hire("Out", "Side", "out.side@example.com", groups=[unassigned])

    assert make_connector(app_id=org.app_id).read_user("out.side@example.com") == Changes()

    org.assign_user(org.app_id, uid)
    found = make_connector(app_id=org.app_id).read_user("out.side@example.com")
    assert [u.external_id for u in found.users] == [uid]
    assert unassigned not in {g.external_id for g in found.groups}


def test_a_user_is_found_by_login_when_it_differs_from_the_email(make_connector: MakeConnector, org: OktaOrg) -> None:
    uid = org.hire("Grace", "Hopper", "grace@example.com", login="ghopper@corp.example.com")

    assert [u.external_id for u in make_connector().read_user("ghopper@corp.example.com").users] == [uid]
    assert [u.external_id for u in make_connector().read_user("ghopper").users] == []  # no such login
    assert [u.email for u in make_connector().read_user("grace@example.com").users] == ["grace@example.com"]


def test_unknown_ambiguous_and_staged_users_give_nothing(make_connector: MakeConnector, org: OktaOrg) -> None:
    org.hire("Twin", "One", "twin@example.com", login="twin.one@example.com")
    org.hire("Twin", "Two", "twin@example.com", login="twin.two@example.com")
    org.hire("Not", "Yet", "not.yet@example.com", status="STAGED")
    connector = make_connector()

    for key in ("nobody@example.com", "00unothere", "twin@example.com", "not.yet@example.com", "  ", 'q"uote@x.com'):
        assert connector.read_user(key) == Changes(), key


def test_a_deactivated_user_is_reported_inactive_with_no_groups(make_connector: MakeConnector, org: OktaOrg) -> None:
    uid = next(u for u in org.user_ids if org.users[u]["status"] == "ACTIVE" and any(
        u in org.members[g] for g in org.group_ids if g != org.everyone_id))
    org.deactivate(uid)

    found = make_connector().read_user(uid)

    assert [(u.external_id, u.active) for u in found.users] == [(uid, False)]
    assert all(uid not in g.member_ids for g in found.groups)


def test_a_user_read_costs_requests_for_the_user_and_their_groups_only(
    make_connector: MakeConnector, org: OktaOrg
) -> None:
    assert org.app_id is not None
    group = next(g for g in org.app_groups[org.app_id])
    uid = org.hire("Ada", "Lovelace", "ada@example.com", groups=[group])
    connector = make_connector(app_id=org.app_id)

    found = connector.read_user("ada@example.com")

    assert {g.external_id for g in found.groups} == {group}
    # lookup + the user's groups + the app assignment + the app's groups + one member page
    assert connector.last_request_count == 5
    assert uid in found.groups[0].member_ids


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'dirsync.db'}", check_schema=False)
    opened.upgrade()
    yield opened
    opened.dispose()


def test_sync_user_provisions_one_user_and_their_groups(
    make_connector: MakeConnector, org: OktaOrg, sim: OktaSimulator, store: Store
) -> None:
    group = next(g for g in org.group_ids if g != org.everyone_id)
    org.hire("Ada", "Lovelace", "ada@example.com", groups=[group])
    settings = settings_for(sim, store)

    result = sync_user(settings, "okta", "ada@example.com", store=store, connector=make_connector())

    assert result.status == "succeeded", result.error
    with store.session() as session:
        state = export_state(session)
    assert [u["email"] for u in state["users"]] == ["ada@example.com"]
    name = org.groups[group]["profile"]["name"]
    assert "ada@example.com" in {g["name"]: g["members"] for g in state["groups"]}[name]


def test_sync_user_of_an_unknown_user_says_not_found(
    make_connector: MakeConnector, org: OktaOrg, sim: OktaSimulator, store: Store
) -> None:
    result = sync_user(settings_for(sim, store), "okta", "nobody@example.com", store=store, connector=make_connector())

    assert result.user_outcome is not None and not result.user_outcome.found
    assert "not found in the directory" in result.user_outcome.text
