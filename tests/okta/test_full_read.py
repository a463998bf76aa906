"""Full reads through the real SDK over HTTPS: scope, statuses, paging, odd records."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from simulators.faults import Fault
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.model import Changes, Kind, Snapshot
from tests.okta.conftest import MakeConnector
from tests.okta.expected import app_users, org_groups, org_users, read_groups, read_users


def full(make_connector: MakeConnector, **overrides: object) -> Snapshot:
    result = make_connector(**overrides).read(None)
    assert isinstance(result, Snapshot)
    return result


def test_org_wide_full_read_reports_every_user_and_group_with_members(
    make_connector: MakeConnector, org: OktaOrg
) -> None:
    snapshot = full(make_connector)

    assert read_users(snapshot) == org_users(org)
    assert read_groups(snapshot.groups) == org_groups(org, set(org_users(org)))
    assert snapshot.rejections == ()
    assert snapshot.watermark


def test_app_scoped_full_read_has_only_assigned_users_and_groups(make_connector: MakeConnector, org: OktaOrg) -> None:
    assert org.app_id is not None
    snapshot = full(make_connector, app_id=org.app_id)

    in_scope = app_users(org, org.app_id)
    assert read_users(snapshot) == in_scope
    assert read_groups(snapshot.groups) == org_groups(org, set(in_scope), sorted(org.app_groups[org.app_id]))


@pytest.mark.parametrize("app", [False, True], ids=["org scope", "app scope"])
def test_a_groups_members_are_the_very_id_strings_of_its_users(
    make_connector: MakeConnector, org: OktaOrg, app: bool
) -> None:
    snapshot = full(make_connector, app_id=org.app_id) if app else full(make_connector)

    own = {u.external_id: u.external_id for u in snapshot.users}
    members = [m for g in snapshot.groups for m in g.member_ids if m in own]
    assert members and all(m is own[m] for m in members)


def test_user_fields_map_to_the_record(make_connector: MakeConnector, org: OktaOrg) -> None:
    uid = org.hire("Grace", "Hopper", "Grace.Hopper@Example.com", login="ghopper")

    user = {u.external_id: u for u in full(make_connector).users}[uid]

    assert (user.email, user.given_name, user.family_name, user.display_name, user.active) == (
        "Grace.Hopper@Example.com", "Grace", "Hopper", "Grace Hopper", True)


def test_display_name_comes_from_the_profile_when_set(make_connector: MakeConnector, org: OktaOrg) -> None:
    uid = org.hire("Grace", "Hopper", display_name="Amazing Grace")

    assert {u.external_id: u for u in full(make_connector).users}[uid].display_name == "Amazing Grace"


def test_email_never_falls_back_to_login(make_connector: MakeConnector, org: OktaOrg) -> None:
    uid = org.hire("No", "Mail", "no.mail@example.com", login="no.mail@example.com")
    org.patch_user(uid, {"profile": {"email": None}})

    assert {u.external_id: u for u in full(make_connector).users}[uid].email is None


@pytest.mark.parametrize(
    ("status", "reported"),
    [("ACTIVE", True), ("PASSWORD_EXPIRED", True), ("LOCKED_OUT", True), ("RECOVERY", True),
     ("PROVISIONED", True), ("SUSPENDED", False)],
)
def test_statuses_map_per_rule_r9(make_connector: MakeConnector, org: OktaOrg, status: str, reported: bool) -> None:
    uid = org.hire("Sam", "Status", status=status)

    assert read_users(full(make_connector))[uid] is reported


def test_staged_and_deprovisioned_users_are_not_reported_org_wide(make_connector: MakeConnector, org: OktaOrg) -> None:
    staged = org.hire("Stan", "Staged", status="STAGED")
    gone = org.user_ids[0]
    org.deactivate(gone)

    users = read_users(full(make_connector))

    assert staged not in users and gone not in users


def test_unknown_status_becomes_a_rejection_and_the_page_survives(make_connector: MakeConnector, org: OktaOrg) -> None:
    odd = org.user_ids[3]
    org.set_status(odd, "HIBERNATING")

    snapshot = full(make_connector)

    assert odd not in read_users(snapshot)
    assert len(snapshot.users) == len(org_users(org)) - 1
    (rejection,) = snapshot.rejections
    assert (rejection.kind, rejection.reason, rejection.external_id) == (Kind.USER, "unknown-status", odd)


def test_a_field_of_the_wrong_type_becomes_a_rejection(make_connector: MakeConnector, org: OktaOrg) -> None:
    odd = org.user_ids[4]
    org.patch_user(odd, {"profile": {"firstName": 42}})

    snapshot = full(make_connector)

    (rejection,) = snapshot.rejections
    assert (rejection.reason, rejection.external_id) == ("malformed-record", odd)


def test_a_rejected_user_keeps_its_group_memberships(make_connector: MakeConnector, org: OktaOrg) -> None:
    group = org.group_ids[1]
    odd = sorted(org.members[group])[0]
    org.set_status(odd, "HIBERNATING")

    groups = read_groups(full(make_connector).groups)

    assert odd in groups[group][1]


def test_everyone_is_left_out_unless_configured(make_connector: MakeConnector, org: OktaOrg) -> None:
    assert org.everyone_id not in read_groups(full(make_connector).groups)

    with_everyone = read_groups(full(make_connector, include_everyone=True).groups)

    assert with_everyone[org.everyone_id] == ("Everyone", frozenset(org_users(org)))


def test_pages_use_the_largest_size_each_endpoint_allows(make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg) -> None:
    full(make_connector)
    full(make_connector, app_id=org.app_id)

    limits = {r.endpoint: parse_qs(urlsplit(r.target).query).get("limit", ["?"])[0] for r in sim.requests()}
    assert limits == {"users.list": "200", "groups.list": "10000", "groups.users": "1000",
                      "apps.users": "500", "apps.groups": "200", "logs": "1000"}


def test_no_per_user_requests_in_a_full_read(make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg) -> None:
    full(make_connector)

    assert "users.get" not in sim.counts() and "apps.user" not in sim.counts()


@pytest.fixture()
def big_org(clock: object) -> OktaOrg:
    """Enough users for three pages of 200, and a group with two pages of 1000 members."""
    org = OktaOrg.generate(users=1100, groups=3, memberships=1500, seed=5, clock=clock)  # type: ignore[arg-type]
    for uid in org.user_ids:
        org.members[org.group_ids[1]].add(uid)
    return org


@pytest.mark.parametrize("links", [None, OktaSimulator.REORDERED_LINKS, OktaSimulator.COMBINED_LINK])
def test_next_links_are_followed_in_any_header_order(
    big_org: OktaOrg, make_connector: MakeConnector, links: str | None
) -> None:
    with OktaSimulator(big_org) as sim:
        if links is not None:
            sim.inject(Fault.VENDOR, endpoint="users.list", times=10, detail=links)
            sim.inject(Fault.VENDOR, endpoint="groups.users", times=20, detail=links)
        from tests.okta.conftest import ApiToken, OktaConnector, client_context, directory

        snapshot = OktaConnector(directory(sim), ApiToken(sim.api_token), ssl_context=client_context(sim),
                                 clock=big_org.clock).read(None)
        counts = sim.counts()

    assert isinstance(snapshot, Snapshot)
    assert len(snapshot.users) == 1100
    assert max(len(g.member_ids) for g in snapshot.groups) == 1100
    assert counts["users.list"] == 6


def test_a_full_read_never_returns_changes(make_connector: MakeConnector) -> None:
    assert not isinstance(make_connector().read(None), Changes)


def test_a_read_reports_pages_and_records_as_it_goes(make_connector: MakeConnector, sim: OktaSimulator) -> None:
    seen: list[tuple[str, int, int]] = []

    snapshot = make_connector().read(None, progress=lambda *step: seen.append(step))

    assert [pages for _, pages, _ in seen] == list(range(1, sum(sim.counts().values()) + 1))
    assert {phase for phase, _, _ in seen} == {"read"}
    assert seen[-1][2] >= len(snapshot.users) + len(snapshot.groups)
    assert [records for _, _, records in seen] == sorted(records for _, _, records in seen)


def test_a_suspended_user_is_inactive_and_marked_suspended(make_connector: MakeConnector, org: OktaOrg) -> None:
    suspended = org.hire("Sue", "Spended", status="SUSPENDED")
    active = org.hire("Al", "Active", status="ACTIVE")

    users = {u.external_id: u for u in full(make_connector).users}

    assert (users[suspended].active, users[suspended].suspended) == (False, True)
    assert (users[active].active, users[active].suspended) == (True, False)
