"""App scope through the engine: a changed user's scope comes from the app's users the last
read kept (`Watermark.app_users`) and the System Log's app events since, or from Okta, which
the read asks about each user (`/apps/{id}/users/{user}`) or, past `MAX_USER_CHECKS`, through
the app's user list. The store cannot tell a user's scope: it does not know the users it
never created (staged, rejected), and it holds some that left the app (a protected account
whose deactivation is held). Each case runs on every path: `forget_kept_users` takes the
kept users out of the watermark (as one an older dirsync wrote), and `crowd` then pushes a
read onto the list by changing more users outside the app than the read checks one by one."""

from __future__ import annotations

from typing import Any

import pytest

from config import parse
from connectors.okta_incremental import MAX_USER_CHECKS
from connectors.okta_watermark import Watermark
from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.cycle import RunResult
from store import Store
from store.export import export_state
from store.models import Directory
from tests.okta.conftest import MakeConnector
from tests.okta.test_cycle import Engine, org_view, store  # noqa: F401  (the store fixture)

PATHS = ["the kept users and the log", "one check each", "the app's user list"]


def crowd(org: OktaOrg, app: str) -> None:
    """Change more users than the read checks one by one, all outside the app."""
    for n in range(MAX_USER_CHECKS + 1):
        uid = org.hire(f"Crowd{n}", "Outside")
        assert uid not in org.app_user_ids(app)[1]


@pytest.fixture()
def app(org: OktaOrg) -> str:
    assert org.app_id is not None
    return org.app_id


def assigned_directly(org: OktaOrg, app: str, first_name: str) -> str:
    """A new user in the app through a direct assignment only (in none of its groups)."""
    uid = org.hire(first_name, "Direct")
    org.assign_user(app, uid)
    return uid


def app_engine(make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock, app: str,
               protected: tuple[str, ...] = ()) -> Engine:
    engine = Engine(make_connector, sim, store, clock, app_id=app)
    table = {"kind": "okta", "org_url": sim.base_url, "token_env": "OKTA_TEST_TOKEN", "ca_bundle": sim.ca_path,
             "app_id": app}
    engine.settings = parse({"store": {"url": str(store.engine.url)}, "directories": {"okta": table},
                             "safety": {"protected_users": list(protected)}}, {})
    return engine


@pytest.fixture()
def engine(make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock, app: str) -> Engine:
    return app_engine(make_connector, sim, store, clock, app)


def stored(engine: Engine, uid: str) -> dict[str, Any] | None:
    """The store's row of Okta user `uid` (active or not), or None."""
    with engine.store.session() as session:
        users = export_state(session)["users"]
    return next((u for u in users if u["external_id"] == uid), None)


def kept_users(engine: Engine) -> frozenset[str] | None:
    """The app's users as the stored watermark keeps them."""
    with engine.store.session() as session:
        row = session.query(Directory).filter_by(name="okta").one()
        state = Watermark.parse(row.watermark)
    assert state is not None
    return state.app_users


def forget_kept_users(engine: Engine) -> None:
    """Rewrite the stored watermark without the app's users, as an older dirsync wrote it."""
    with engine.store.session() as session:
        row = session.query(Directory).filter_by(name="okta").one()
        state = Watermark.parse(row.watermark)
        assert state is not None and state.app_users is not None
        row.watermark = Watermark(state.scope, state.full_at, state.since, state.log_cursor, state.seen,
                                  state.handled).dump()
        session.commit()


def incremental_cycle(engine: Engine, sim: OktaSimulator, org: OktaOrg, app: str, path: str) -> RunResult:
    """One cycle on `path`, checked to be incremental and to have taken that path."""
    if path != PATHS[0]:
        forget_kept_users(engine)
    if path == PATHS[2]:
        crowd(org, app)
    sim.reset_counts()
    first = sim.request_index
    result = engine.cycle()
    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    counts = sim.counts()
    assert ("apps.users" in counts) == (path == PATHS[2]), counts
    assert (checks(sim, first) > 0) == (path == PATHS[1]), counts
    return result


def checks(sim: OktaSimulator, first: int) -> int:
    """The read's checks of one user each since request `first` (`expand=user`: the engine's
    own look at a user it created, `OktaConnector.read_user`, sends none)."""
    return sum(1 for r in sim.requests() if r.index >= first and r.endpoint == "apps.user" and "expand=user" in r.target)


@pytest.mark.parametrize("path", PATHS)
def test_a_user_assigned_while_staged_and_activated_within_the_overlap_is_created(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str, path: str
) -> None:
    engine.cycle()
    uid = org.hire("Stan", "Staged", status="STAGED")
    org.assign_user(app, uid)
    engine.cycle()  # reads the assignment event while the user is STAGED: nothing to create
    assert stored(engine, uid) is None
    clock.advance(minutes=-42)  # just before the last read started, inside its overlap
    org.activate(uid)
    clock.advance(minutes=42)

    incremental_cycle(engine, sim, org, app, path)

    assert engine.view()[0][uid] == "stan.staged@example.com"
    assert engine.view() == org_view(org, app)


@pytest.mark.parametrize("path", PATHS)
def test_a_suspended_users_profile_change_reaches_the_store(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str, path: str
) -> None:
    engine.cycle()
    uid = sorted(org.app_users[app])[0]
    org.suspend(uid)
    clock.advance(minutes=10)  # the suspension is older than the overlap of the next reads
    engine.cycle()
    assert (stored(engine, uid) or {}).get("active") is False
    org.rename(uid, first_name="Renamed", last_name="Away", display_name="Renamed Away")

    incremental_cycle(engine, sim, org, app, path)

    row = stored(engine, uid)
    assert row is not None and (row["display_name"], row["active"]) == ("Renamed Away", False)


@pytest.mark.parametrize("path", PATHS)
def test_the_fix_of_a_record_rejected_before_creates_the_user(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str, path: str
) -> None:
    engine.cycle()
    uid = org.hire("No", "Email")
    org.patch_user(uid, {"profile": {"email": None}})
    org.assign_user(app, uid)
    assert engine.cycle().counts.get("rejected") == 1
    assert stored(engine, uid) is None
    org.rename(uid, email="now.reachable@example.com")

    incremental_cycle(engine, sim, org, app, path)

    assert engine.view()[0][uid] == "now.reachable@example.com"


@pytest.mark.parametrize("path", PATHS)
def test_a_protected_account_that_left_the_app_takes_no_profile_update(
    make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock,  # noqa: F811
    org: OktaOrg, app: str, path: str
) -> None:
    uid = assigned_directly(org, app, "Pat")
    email = org.users[uid]["profile"]["email"]
    engine = app_engine(make_connector, sim, store, clock, app, protected=(email,))
    engine.cycle()
    before = stored(engine, uid)
    org.unassign_user(app, uid)
    assert uid not in org.app_user_ids(app)[1]
    engine.cycle()  # its deactivation is held: it stays active in the store
    assert stored(engine, uid) == before and before is not None and before["active"]
    org.rename(uid, display_name="Not Ours Any More")

    incremental_cycle(engine, sim, org, app, path)

    assert stored(engine, uid) == before


def test_past_the_checks_a_read_lists_the_app_once_instead_of_reading_in_full(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str
) -> None:
    renamed, left = assigned_directly(org, app, "Ren"), assigned_directly(org, app, "Lee")
    engine.cycle()
    outsider = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])
    org.assign_user(app, outsider)  # an assignment event only: read by id
    org.rename(renamed, email="renamed@example.com")
    org.unassign_user(app, left)
    crowd(org, app)
    forget_kept_users(engine)
    sim.reset_counts()

    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    assert engine.view() == org_view(org, app)
    counts = sim.counts()
    # the app's users fit one page of the list, instead of 104 checks; the user who entered
    # the app had their groups listed by the read, so the engine does not read them again
    assert counts["apps.users"] == 1 and counts.get("apps.user", 0) == 0, counts
    assert kept_users(engine) == set(org.app_user_ids(app)[0])  # the list keeps them again


def test_with_the_kept_users_many_changes_need_neither_the_list_nor_checks(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str
) -> None:
    renamed, left = assigned_directly(org, app, "Ren"), assigned_directly(org, app, "Lee")
    staged = org.hire("Stu", "Staged", status="STAGED")
    org.assign_user(app, staged)
    engine.cycle()
    assert kept_users(engine) == set(org.app_user_ids(app)[0]) and staged in kept_users(engine)  # type: ignore[operator]
    outsider = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])
    org.assign_user(app, outsider)  # an assignment event only: read by id
    org.rename(renamed, email="renamed@example.com")
    org.unassign_user(app, left)
    org.activate(staged)  # no app event: the kept users say it is in the app
    crowd(org, app)
    sim.reset_counts()
    first = sim.request_index

    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    assert engine.view() == org_view(org, app)
    assert engine.view()[0][staged] == "stu.staged@example.com"
    counts = sim.counts()
    assert counts.get("apps.users", 0) == 0 and checks(sim, first) == 0, counts
    assert kept_users(engine) == set(org.app_user_ids(app)[0])


def test_a_late_app_event_is_checked_with_okta(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str
) -> None:
    uid = assigned_directly(org, app, "Lou")
    engine.cycle()
    engine.cycle()
    clock.advance(minutes=-42)  # just before the last read started
    with org.held_log() as late:
        org.unassign_user(app, uid)
    clock.advance(minutes=42)
    engine.cycle()  # the log does not show the change yet: nothing to tell
    assert uid in engine.view()[0]
    late.release()  # published before the last read began: it may be older than what it knew
    org.assign_user(app, uid)
    with org.held_log() as later:
        org.unassign_user(app, uid)
    sim.reset_counts()
    first = sim.request_index

    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    assert checks(sim, first) == 1
    assert uid not in engine.view()[0] and engine.view() == org_view(org, app)
    assert uid not in kept_users(engine)  # type: ignore[operator]
    later.release()


def test_an_app_event_without_its_user_asks_okta_about_every_changed_user(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str
) -> None:
    renamed = assigned_directly(org, app, "Ren")
    engine.cycle()
    org.rename(renamed, email="renamed@example.com")
    org.log("application.user_membership.add", [org._app_target(app)])  # names no user
    sim.reset_counts()
    first = sim.request_index

    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    assert checks(sim, first) == 1 and engine.view() == org_view(org, app)
    assert kept_users(engine) is None  # someone came or went: the next read asks Okta too


@pytest.mark.parametrize("path", PATHS)
def test_the_groups_of_users_who_entered_the_app_come_from_the_log_and_the_groups_re_read(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str, path: str
) -> None:
    first_group, second_group = sorted(org.app_groups[app])
    others = [g for g in org.group_ids if g not in org.app_groups[app] and g != org.everyone_id]
    direct = set(org.app_users[app])
    leaver = next(u for u in sorted(org.members[first_group])
                  if u not in direct and u not in org.members[second_group])
    outsiders = [u for u in org.user_ids if u not in org.app_user_ids(app)[1]]
    engine.cycle()
    org.remove_member(first_group, leaver)  # out of the app: deactivated, its memberships dropped
    engine.cycle()
    assert leaver not in engine.view()[0] and leaver not in org.app_user_ids(app)[1]
    org.add_member(first_group, leaver)  # back in through both of the app's groups
    org.add_member(second_group, leaver)
    joiner = outsiders[0]
    org.add_member(others[0], joiner)  # a group outside the app: not the app's business
    org.assign_user(app, joiner)
    org.add_member(second_group, joiner)
    newly_assigned = others[1]  # its members enter the app with it: the group is read whole
    org.assign_group(app, newly_assigned)
    hire = org.hire("Nell", "New", groups=[first_group])

    incremental_cycle(engine, sim, org, app, path)

    assert engine.view() == org_view(org, app)
    members = engine.view()[1]
    assert org.users[leaver]["profile"]["email"] in members[org.groups[first_group]["profile"]["name"]]
    assert {joiner, hire, leaver} <= set(engine.view()[0])
    # With the kept users, none of them was in the app at the last read: the log and the
    # re-read group tell all of their groups in it. Without them, each one's are read.
    assert ("users.groups" in sim.counts()) == (path != PATHS[0]), sim.counts()


@pytest.mark.parametrize("path", PATHS)
def test_users_who_left_the_app_and_entered_it_again_since_the_last_read_keep_their_groups(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str, path: str
) -> None:
    first_group, second_group = sorted(org.app_groups[app])
    in_first_only = [u for u in sorted(org.members[first_group])
                     if u not in org.app_users[app] and u not in org.members[second_group]]
    mover, fixed = in_first_only[:2]
    org.patch_user(fixed, {"profile": {"email": None}})
    assert engine.cycle().counts.get("rejected") == 1  # in the app (kept), not in the store
    for uid in (mover, fixed):
        org.remove_member(first_group, uid)  # out of the app ...
        org.add_member(second_group, uid)  # ... and in again, within one read's window
    org.rename(fixed, email="fixed@example.com")

    incremental_cycle(engine, sim, org, app, path)

    assert engine.view() == org_view(org, app)
    assert "fixed@example.com" in engine.view()[1][org.groups[second_group]["profile"]["name"]]
    # With the kept users, the read lists neither one's groups: the mover's are in the
    # store, and the engine reads those of the user it creates (`regain_groups`, which
    # looks the user up first). Without them, the read lists both.
    counts = sim.counts()
    assert (counts["users.groups"], "users.get" in counts) == ((1, True) if path == PATHS[0] else (2, False)), counts


@pytest.mark.parametrize("kept", [True, False], ids=["kept users", "no kept users"])
def test_past_the_checks_many_users_entering_the_app_need_no_full_read_with_the_kept_users(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, app: str, kept: bool
) -> None:
    engine.cycle()
    group = sorted(org.app_groups[app])[0]
    for n in range(MAX_USER_CHECKS + 1):  # each enters the app through its group
        org.hire(f"Joiner{n}", "Team", groups=[group])
    if not kept:
        forget_kept_users(engine)
    sim.reset_counts()

    result = engine.cycle()

    assert engine.view() == org_view(org, app)
    counts = sim.counts()
    if kept:  # the log tells their groups: no request reads them, nor the app's users
        assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
        assert "users.groups" not in counts and "apps.users" not in counts, counts
    else:  # their groups need a full read, which runs without listing the app first
        assert (result.status, result.mode) == ("succeeded", "full"), result.error
        assert counts["apps.users"] == 1  # the full read's page, not the list's before it


@pytest.mark.parametrize("path", PATHS)
def test_a_new_user_deactivated_before_a_read_and_reactivated_after_it_gets_their_groups(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str, path: str
) -> None:
    engine.cycle()
    group = sorted(org.app_groups[app])[0]
    clock.advance(minutes=30)
    hire = org.hire("Rita", "React", groups=[group])  # in the app through its group
    clock.advance(minutes=1)
    org.deactivate(hire)  # out of the app, still in the group: within the next read's overlap
    clock.advance(minutes=1)
    engine.cycle()  # drops the hire: not in the app
    assert stored(engine, hire) is None
    clock.advance(minutes=1)
    org.reactivate(hire)  # back in the app through the group, whose members did not change
    clock.advance(minutes=10)

    incremental_cycle(engine, sim, org, app, path)

    assert engine.view() == org_view(org, app)
    assert org.users[hire]["profile"]["email"] in engine.view()[1][org.groups[group]["profile"]["name"]]


@pytest.mark.parametrize("path", PATHS)
def test_members_whom_okta_adds_to_the_app_after_their_group_was_read_get_that_group(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str, path: str
) -> None:
    engine.cycle()
    outside = {u for u in org.user_ids if u not in org.app_user_ids(app)[1]}
    group = next(g for g in org.group_ids if g not in org.app_groups[app] and g != org.everyone_id
                 and org.members[g] & outside)
    clock.advance(minutes=5)
    org.assign_group(app, group, fan_out=False)  # Okta adds its members to the app later
    clock.advance(minutes=1)
    engine.cycle()  # reads the newly assigned group whole: its members are not in the app yet
    clock.advance(minutes=1)
    org.fan_out_group(app, group)
    clock.advance(minutes=10)

    incremental_cycle(engine, sim, org, app, path)

    assert engine.view() == org_view(org, app)
    newcomers = {org.users[u]["profile"]["email"] for u in org.members[group] & outside
                 if org.users[u]["status"] == "ACTIVE"}
    assert newcomers and newcomers <= engine.view()[1][org.groups[group]["profile"]["name"]]
