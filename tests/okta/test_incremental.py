"""Incremental reads: each kind of change shows up, and costs requests in proportion to it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.okta_watermark import Watermark
from simulators.clocks import ManualClock
from simulators.faults import Fault
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.model import Changes, MembershipDelta, Snapshot
from tests.okta.conftest import MakeConnector


class Cycles:
    """Reads like the engine does: a full read, then incremental reads from its watermark,
    with the clock moving 40 minutes (one cycle) between reads."""

    def __init__(self, make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator, **settings: object) -> None:
        self.connector = make_connector(**settings)
        self.clock = clock
        self.sim = sim
        first = self.connector.read(None)
        assert isinstance(first, Snapshot)
        self.watermark = first.watermark
        self.clock.advance(minutes=40)

    def next(self) -> Changes | Snapshot:
        self.sim.reset_counts()
        result = self.connector.read(self.watermark)
        self.watermark = result.watermark
        self.clock.advance(minutes=40)
        return result

    def changes(self) -> Changes:
        result = self.next()
        assert isinstance(result, Changes), type(result)
        return result


@pytest.fixture()
def org_cycles(make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator) -> Cycles:
    return Cycles(make_connector, clock, sim)


@pytest.fixture()
def app_cycles(make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator, org: OktaOrg) -> Cycles:
    return Cycles(make_connector, clock, sim, app_id=org.app_id)


def users_of(changes: Changes) -> dict[str, tuple[str | None, bool]]:
    return {u.external_id: (u.email, u.active) for u in changes.users}


# --- org scope ------------------------------------------------------------------------------


def test_nothing_changed_costs_three_requests_and_reports_nothing(org_cycles: Cycles, sim: OktaSimulator) -> None:
    changes = org_cycles.changes()

    assert changes == Changes(watermark=changes.watermark)
    assert sim.counts() == {"logs": 1, "users.list": 1, "groups.list": 1}


def test_hire_is_reported(org_cycles: Cycles, org: OktaOrg) -> None:
    uid = org.hire("Ada", "Lovelace")

    assert users_of(org_cycles.changes()) == {uid: ("ada.lovelace@example.com", True)}


def test_hired_into_a_group_reports_the_membership_from_the_system_log(org_cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    group = org.group_ids[2]
    uid = org.hire("Ada", "Lovelace", groups=[group])

    changes = org_cycles.changes()

    assert changes.groups == () and changes.members_complete == frozenset()
    assert changes.memberships == (MembershipDelta(group, added=frozenset({uid})),)
    assert sim.counts() == {"logs": 1, "users.list": 1, "groups.list": 1}


def test_rename_is_reported_with_the_new_email(org_cycles: Cycles, org: OktaOrg) -> None:
    uid = org.user_ids[5]
    org.rename(uid, email="renamed@example.com", login="renamed@example.com")

    assert users_of(org_cycles.changes()) == {uid: ("renamed@example.com", True)}


@pytest.mark.parametrize("action", ["suspend", "deactivate", "leave"])
def test_a_user_who_stops_working_is_reported_inactive(org_cycles: Cycles, org: OktaOrg, action: str) -> None:
    uid = org.user_ids[6]
    getattr(org, action)(uid)

    assert users_of(org_cycles.changes())[uid][1] is False


def test_unsuspend_and_reactivate_report_the_user_active_again(org_cycles: Cycles, org: OktaOrg) -> None:
    first, second = org.user_ids[7], org.user_ids[8]
    org.suspend(first)
    org.deactivate(second)
    org_cycles.changes()
    org.unsuspend(first)
    org.reactivate(second)

    changed = users_of(org_cycles.changes())

    assert changed[first][1] is True and changed[second][1] is True


def test_a_deleted_user_is_removed(org_cycles: Cycles, org: OktaOrg) -> None:
    uid = org.user_ids[9]
    org.leave(uid, delete=True)

    assert uid in org_cycles.changes().removed_user_ids


def test_a_refused_deletion_removes_nothing(org_cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    # An attempt Okta refused changed nothing: its user and group are still there.
    org.log("user.lifecycle.delete.completed", [org._user_target(org.user_ids[9])], outcome="FAILURE")
    org.log("group.lifecycle.delete", [org._group_target(org.group_ids[2])], outcome="DENY")

    changes = org_cycles.changes()

    assert changes == Changes(watermark=changes.watermark)
    assert sim.counts() == {"logs": 1, "users.list": 1, "groups.list": 1}


def test_membership_changes_come_from_the_system_log_without_re_reading_members(
    org_cycles: Cycles, org: OktaOrg, sim: OktaSimulator
) -> None:
    group = org.group_ids[1]
    leaver = sorted(org.members[group])[0]
    joiner = next(u for u in org.user_ids if u not in org.members[group])
    org.remove_member(group, leaver)
    org.add_member(group, joiner)

    changes = org_cycles.changes()

    assert changes.memberships == (MembershipDelta(group, added=frozenset({joiner}), removed=frozenset({leaver})),)
    assert changes.groups == () and changes.users == ()
    assert sim.counts() == {"logs": 1, "users.list": 1, "groups.list": 1}


def test_group_create_rename_and_delete(org_cycles: Cycles, org: OktaOrg) -> None:
    created = org.create_group("Newcomers")
    renamed = org.group_ids[1]
    org.rename_group(renamed, "Renamed Team")
    deleted = org.group_ids[2]
    org.delete_group(deleted)

    changes = org_cycles.changes()

    assert {g.external_id: g.name for g in changes.groups} == {created: "Newcomers", renamed: "Renamed Team"}
    assert changes.removed_group_ids == {deleted}


def test_changes_cost_requests_in_proportion_to_them(org_cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    for n in range(5):
        org.hire(f"New{n}", "Person")
    org.rename(org.user_ids[1], email="x@example.com")

    changes = org_cycles.changes()

    assert len(changes.users) == 6
    assert sum(sim.counts().values()) == 3


def test_the_overlap_window_re_reads_changes_near_the_watermark(org_cycles: Cycles, org: OktaOrg, clock: ManualClock) -> None:
    # A change stamped just before the last read started (Okta's filter lags slightly behind)
    clock.advance(minutes=-42)
    uid = org.hire("Late", "Arrival")
    clock.advance(minutes=42)

    assert uid in users_of(org_cycles.changes())


# --- app scope ------------------------------------------------------------------------------


def test_app_scope_nothing_changed_costs_three_requests(app_cycles: Cycles, sim: OktaSimulator) -> None:
    changes = app_cycles.changes()

    assert changes == Changes(watermark=changes.watermark)
    assert sim.counts() == {"logs": 1, "users.list": 1, "apps.groups": 1}


def test_app_scope_assign_and_unassign_a_user(app_cycles: Cycles, org: OktaOrg) -> None:
    app = org.app_id
    assert app is not None
    outsider = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])
    org.assign_user(app, outsider)

    assert users_of(app_cycles.changes()) == {outsider: (org.users[outsider]["profile"]["email"], True)}

    org.unassign_user(app, outsider)

    changes = app_cycles.changes()
    assert changes.removed_user_ids == {outsider} and changes.users == ()


def test_app_scope_a_refused_assignment_costs_nothing(app_cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    app = org.app_id
    assert app is not None
    outsider = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])
    # Refused attempts: the user did not enter the app, the group was not assigned to it.
    org.log("application.user_membership.add", [org._user_target(outsider), org._app_target(app)], outcome="FAILURE")
    org.log("group.application_assignment.remove", [org._group_target(org.group_ids[1]), org._app_target(app)],
            outcome="SKIPPED")

    changes = app_cycles.changes()

    assert changes == Changes(watermark=changes.watermark)
    assert sim.counts() == {"logs": 1, "users.list": 1, "apps.groups": 1}


def test_app_scope_assign_and_unassign_a_group(app_cycles: Cycles, org: OktaOrg) -> None:
    app = org.app_id
    assert app is not None
    group = next(g for g in org.group_ids[1:] if g not in org.app_groups[app])
    before = set(org.app_user_ids(app)[0])
    org.assign_group(app, group)
    newcomers = set(org.app_user_ids(app)[0]) - before

    changes = app_cycles.changes()
    assert [g.external_id for g in changes.groups] == [group]
    assert set(users_of(changes)) == newcomers

    org.unassign_group(app, group)

    changes = app_cycles.changes()
    assert changes.removed_group_ids == {group}
    assert changes.removed_user_ids == newcomers


def test_app_scope_a_deactivated_user_leaves_scope(app_cycles: Cycles, org: OktaOrg) -> None:
    app = org.app_id
    assert app is not None
    uid = sorted(org.app_users[app])[0]
    org.deactivate(uid)

    assert uid in app_cycles.changes().removed_user_ids


def test_app_scope_changes_outside_the_app_are_not_reported(app_cycles: Cycles, org: OktaOrg) -> None:
    app = org.app_id
    assert app is not None
    outsider = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])
    org.rename(outsider, email="elsewhere@example.com")

    changes = app_cycles.changes()

    assert changes.users == ()


def test_app_scope_membership_change_in_an_assigned_group(app_cycles: Cycles, org: OktaOrg,
                                                          sim: OktaSimulator) -> None:
    app = org.app_id
    assert app is not None
    group = sorted(org.app_groups[app])[0]
    joiner = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])
    org.add_member(group, joiner)

    changes = app_cycles.changes()

    assert MembershipDelta(group, added=frozenset({joiner})) in changes.memberships
    assert changes.groups == ()
    assert joiner in users_of(changes)
    # outside the app at the last read, the joiner was in none of its groups: the log's
    # delta is all of them, and neither the read nor the engine reads their groups
    assert joiner in changes.user_groups_complete and "users.groups" not in sim.counts()


@pytest.mark.parametrize("kept", [True, False], ids=["kept users", "no kept users"])
def test_app_scope_many_changes_read_by_the_kept_users_or_the_apps_user_list(
    app_cycles: Cycles, org: OktaOrg, sim: OktaSimulator, kept: bool
) -> None:
    app = org.app_id
    assert app is not None
    hired = [org.hire(f"Many{n}", "Hires") for n in range(101)]
    for uid in hired[:3]:
        org.assign_user(app, uid)
    if not kept:  # as an older dirsync wrote it
        state = Watermark.parse(app_cycles.watermark)
        assert state is not None and state.app_users is not None
        app_cycles.watermark = Watermark(state.scope, state.full_at, state.since, state.log_cursor, state.seen).dump()

    changes = app_cycles.changes()

    assert set(users_of(changes)) == set(hired[:3])
    assert set(changes.removed_user_ids) == set(hired[3:])  # outside the app: the engine holds none of them
    # the kept users and the log tell who is in the app and that the 3 who entered it were
    # in none of its groups; without them, one page of the app's users instead of 101
    # checks, and the groups of the 3, one request each
    more = {} if kept else {"apps.users": 1, "users.groups": 3}
    assert sim.counts() == {"logs": 1, "users.list": 1, "apps.groups": 1, **more}


# --- when a full read is due ----------------------------------------------------------------


def test_a_full_read_is_due_after_full_every_hours(org_cycles: Cycles, clock: ManualClock) -> None:
    assert isinstance(org_cycles.next(), Changes)
    clock.advance(hours=24)

    assert isinstance(org_cycles.next(), Snapshot)
    assert isinstance(org_cycles.next(), Changes)


def test_a_changed_scope_forces_a_full_read(org_cycles: Cycles, make_connector: MakeConnector, org: OktaOrg) -> None:
    result = make_connector(app_id=org.app_id).read(org_cycles.watermark)

    assert isinstance(result, Snapshot)


@pytest.mark.parametrize("watermark", [
    "", "not json", '{"v": 99}', '{"v": 1, "log": "/elsewhere"}', "[1]",
    '{"v": 1, "scope": "org", "full_at": "2026-01-01T00:00:00", "since": "2026-01-01T00:00:00.000Z", "log": "/api/v1/logs"}',
])
def test_an_unreadable_watermark_forces_a_full_read(make_connector: MakeConnector, watermark: str) -> None:
    assert isinstance(make_connector().read(watermark), Snapshot)


def test_a_refused_log_cursor_forces_a_full_read(org_cycles: Cycles, sim: OktaSimulator, org: OktaOrg) -> None:
    sim.inject(Fault.VENDOR, endpoint="logs", detail=OktaSimulator.EXPIRED_CURSOR)
    uid = org.hire("Ada", "Lovelace")

    result = org_cycles.next()

    assert isinstance(result, Snapshot) and uid in {u.external_id for u in result.users}


def test_the_watermark_keeps_the_time_of_the_last_full_read(org_cycles: Cycles, clock: ManualClock) -> None:
    first = Watermark.parse(org_cycles.watermark)
    org_cycles.changes()
    later = Watermark.parse(org_cycles.watermark)

    assert first is not None and later is not None
    assert later.full_at == first.full_at
    assert later.since - first.since == timedelta(minutes=40)


def test_a_user_back_from_suspension_is_reported_with_their_groups(org_cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    group = org.group_ids[1]
    uid = sorted(org.members[group])[0]
    org.suspend(uid)
    org_cycles.changes()  # the engine drops the memberships of an inactive user (R7)
    org.unsuspend(uid)

    changes = org_cycles.changes()

    assert any(d.group_external_id == group and uid in d.added for d in changes.memberships)
    assert sim.counts()["users.groups"] == 1
