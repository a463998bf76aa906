"""Membership changes from the System Log: deltas where the log tells them in full, the
group's member list re-read where it cannot, through the real request path."""

from __future__ import annotations

import pytest

from connectors.errors import ConnectorError
from connectors.okta_watermark import Watermark
from reconcile.model import Changes, MembershipDelta, Snapshot
from simulators.clocks import ManualClock
from simulators.faults import Fault
from simulators.okta import OktaOrg, OktaSimulator
from store import Store
from tests.okta.conftest import MakeConnector
from tests.okta.test_cycle import Engine, org_view, store  # noqa: F401  (store: a fixture)
from tests.okta.test_incremental import Cycles

LIST_ONLY = {"logs": 1, "users.list": 1, "groups.list": 1}


@pytest.fixture()
def cycles(make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator) -> Cycles:
    return Cycles(make_connector, clock, sim)


def member_and_outsider(org: OktaOrg, group: str) -> tuple[str, str]:
    member = sorted(org.members[group])[0]
    outsider = next(u for u in org.user_ids if u not in org.members[group])
    return member, outsider


def re_read(changes: Changes) -> dict[str, frozenset[str]]:
    assert {g.external_id for g in changes.groups} == changes.members_complete
    return {g.external_id: g.member_ids for g in changes.groups}


def test_adds_and_removes_in_several_groups_are_deltas(cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    first, second = org.group_ids[1], org.group_ids[2]
    leaver, joiner = member_and_outsider(org, first)
    other = next(u for u in org.user_ids if u not in org.members[second])
    org.remove_member(first, leaver)
    org.add_member(first, joiner)
    org.add_member(second, other)

    changes = cycles.changes()

    assert changes.memberships == (
        MembershipDelta(first, added=frozenset({joiner}), removed=frozenset({leaver})),
        MembershipDelta(second, added=frozenset({other})),
    )
    assert changes.groups == ()
    assert sim.counts() == LIST_ONLY


def test_a_member_added_then_removed_in_one_interval_ends_removed(cycles: Cycles, org: OktaOrg, clock: ManualClock) -> None:
    group = org.group_ids[1]
    _, outsider = member_and_outsider(org, group)
    org.add_member(group, outsider)
    clock.advance(seconds=5)
    org.remove_member(group, outsider)

    assert cycles.changes().memberships == (MembershipDelta(group, removed=frozenset({outsider})),)


def test_events_out_of_published_order_apply_in_published_order(
    cycles: Cycles, org: OktaOrg, clock: ManualClock, sim: OktaSimulator
) -> None:
    # Okta's poll returns events in persistence order: the earlier add shows up after the
    # later remove, within the same interval.
    group = org.group_ids[1]
    _, outsider = member_and_outsider(org, group)
    with org.held_log() as late:
        org.add_member(group, outsider)
    clock.advance(seconds=5)
    org.remove_member(group, outsider)
    late.release()

    changes = cycles.changes()

    assert changes.memberships == (MembershipDelta(group, removed=frozenset({outsider})),)
    assert sim.counts() == LIST_ONLY


def test_a_change_whose_event_is_not_in_the_log_yet_re_reads_the_group(
    cycles: Cycles, org: OktaOrg, sim: OktaSimulator
) -> None:
    group = org.group_ids[1]
    _, joiner = member_and_outsider(org, group)
    with org.held_log() as late:
        org.add_member(group, joiner)

    changes = cycles.changes()

    assert re_read(changes) == {group: frozenset(org.members[group])} and joiner in org.members[group]
    assert changes.memberships == ()
    assert sim.counts()["groups.users"] == 1
    late.release()


def test_an_event_that_arrives_after_the_next_read_began_re_reads_its_group(
    cycles: Cycles, org: OktaOrg, clock: ManualClock
) -> None:
    # add (persisted late), then remove: the read sees only the remove and applies it; the
    # add arrives in the next poll, older than what was applied, so it must not be replayed.
    group = org.group_ids[1]
    _, outsider = member_and_outsider(org, group)
    with org.held_log() as late:
        org.add_member(group, outsider)
    clock.advance(seconds=5)
    org.remove_member(group, outsider)
    assert cycles.changes().memberships == (MembershipDelta(group, removed=frozenset({outsider})),)
    late.release()
    newcomer = next(u for u in org.user_ids if u not in org.members[group] and u != outsider)
    org.add_member(group, newcomer)  # a fresh event covers the group's last change

    changes = cycles.changes()

    assert re_read(changes) == {group: frozenset(org.members[group])} and outsider not in org.members[group]
    assert changes.memberships == ()


def test_an_event_older_than_the_last_read_is_not_replayed_over_what_a_re_read_saw(
    cycles: Cycles, org: OktaOrg, clock: ManualClock
) -> None:
    # Both events are late: the read re-reads the group (no event covers its change) and
    # sees the user out. Then only the add arrives, with a fresh event beside it.
    group = org.group_ids[1]
    _, outsider = member_and_outsider(org, group)
    with org.held_log() as late_add:
        org.add_member(group, outsider)
    clock.advance(seconds=1)
    with org.held_log() as late_remove:
        org.remove_member(group, outsider)
    assert outsider not in re_read(cycles.changes())[group]
    late_add.release()
    newcomer = next(u for u in org.user_ids if u not in org.members[group] and u != outsider)
    org.add_member(group, newcomer)

    changes = cycles.changes()

    assert changes.memberships == ()
    assert re_read(changes) == {group: frozenset(org.members[group])} and outsider not in org.members[group]
    late_remove.release()


def test_a_late_event_within_the_second_the_last_read_began_is_not_replayed(
    make_connector: MakeConnector, org: OktaOrg, clock: ManualClock
) -> None:
    # Okta's `Date` gives the read's start to the second; the watermark also keeps the latest
    # membership event seen, so an older event arriving later is recognised as late.
    connector = make_connector()
    watermark = connector.read(None).watermark
    clock.advance(minutes=40)
    group = org.group_ids[1]
    _, outsider = member_and_outsider(org, group)
    with org.held_log() as late:
        clock.advance(seconds=0.1)
        org.add_member(group, outsider)
    clock.advance(seconds=0.1)
    org.remove_member(group, outsider)
    clock.advance(seconds=0.1)
    first = connector.read(watermark)
    assert isinstance(first, Changes)
    assert first.memberships == (MembershipDelta(group, removed=frozenset({outsider})),)
    late.release()
    clock.advance(minutes=40)
    newcomer = next(u for u in org.user_ids if u not in org.members[group] and u != outsider)
    org.add_member(group, newcomer)  # a fresh event covers the group's last change

    changes = connector.read(first.watermark)

    assert isinstance(changes, Changes) and changes.memberships == ()
    assert re_read(changes) == {group: frozenset(org.members[group])}
    assert outsider not in org.members[group] and newcomer in org.members[group]


def test_a_membership_change_no_event_tells_re_reads_the_group(cycles: Cycles, org: OktaOrg) -> None:
    # Okta removes a deleted user from their groups without membership events.
    group = org.group_ids[1]
    leaver = sorted(org.members[group])[0]
    groups_of_leaver = {g for g in org.group_ids[1:] if leaver in org.members[g]}
    org.leave(leaver, delete=True)

    changes = cycles.changes()

    assert set(re_read(changes)) == groups_of_leaver
    assert all(leaver not in members for members in re_read(changes).values())
    assert leaver in changes.removed_user_ids


def test_a_membership_event_for_a_user_out_of_scope_adds_nobody(cycles: Cycles, org: OktaOrg) -> None:
    group = org.group_ids[1]
    staged = org.hire("Stan", "Staged", status="STAGED", groups=[group])

    changes = cycles.changes()

    assert changes.memberships == () and changes.users == ()
    assert staged in org.members[group]


def test_a_group_renamed_and_its_members_moved_is_re_read_whole(cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    group = org.group_ids[1]
    leaver, joiner = member_and_outsider(org, group)
    org.rename_group(group, "Renamed Team")
    org.remove_member(group, leaver)
    org.add_member(group, joiner)

    changes = cycles.changes()

    assert [(g.external_id, g.name) for g in changes.groups] == [(group, "Renamed Team")]
    assert re_read(changes) == {group: frozenset(org.members[group])}
    assert changes.memberships == ()
    assert sim.counts()["groups.users"] == 1


def test_a_user_deactivated_and_removed_from_a_group(cycles: Cycles, org: OktaOrg) -> None:
    group = org.group_ids[1]
    uid = sorted(org.members[group])[0]
    org.deactivate(uid)
    org.remove_member(group, uid)

    changes = cycles.changes()

    assert [(u.external_id, u.active) for u in changes.users] == [(uid, False)]
    assert changes.memberships == (MembershipDelta(group, removed=frozenset({uid})),)


def test_a_deleted_group_takes_no_delta(cycles: Cycles, org: OktaOrg) -> None:
    group = org.group_ids[1]
    _, joiner = member_and_outsider(org, group)
    org.add_member(group, joiner)
    org.delete_group(group)

    changes = cycles.changes()

    assert changes.removed_group_ids == {group} and changes.memberships == () and changes.groups == ()


def test_a_fault_on_a_later_log_page_fails_the_whole_read_and_the_next_converges(
    make_connector: MakeConnector, org: OktaOrg, sim: OktaSimulator, clock: ManualClock
) -> None:
    connector = make_connector(max_retries=1)
    watermark = connector.read(None).watermark
    clock.advance(minutes=40)
    group = org.group_ids[1]
    _, toggled = member_and_outsider(org, group)
    for _ in range(501):  # 1,002 events: two log pages
        org.add_member(group, toggled)
        org.remove_member(group, toggled)
    org.add_member(group, toggled)
    sim.inject(Fault.HTTP_503, endpoint="logs", at=2, times=2)  # every try of page 2

    with pytest.raises(ConnectorError):
        connector.read(watermark)
    changes = connector.read(watermark)  # the engine keeps the watermark of the last success

    assert isinstance(changes, Changes)
    assert changes.memberships == (MembershipDelta(group, added=frozenset({toggled})),)


def test_a_watermark_of_the_previous_version_forces_a_full_read(cycles: Cycles, make_connector: MakeConnector) -> None:
    current = Watermark.parse(cycles.watermark)
    assert current is not None
    older = current.dump().replace('"v": 2', '"v": 1')

    assert isinstance(make_connector().read(older), Snapshot)


# --- through the engine ---------------------------------------------------------------------


@pytest.fixture()
def engine(make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock) -> Engine:
    return Engine(make_connector, sim, store, clock)


def test_cycles_of_log_deltas_keep_the_store_equal_to_the_org(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock
) -> None:
    assert engine.cycle().status == "succeeded"
    first, second, third = org.group_ids[1], org.group_ids[2], org.group_ids[3]
    mover = sorted(org.members[first])[0]
    leaver = sorted(org.members[second])[-1]
    hired = org.hire("Ada", "Lovelace", groups=[third])
    org.remove_member(first, mover)
    org.add_member(second, mover)
    org.deactivate(leaver)
    org.remove_member(second, leaver)
    with org.held_log() as late:
        org.add_member(first, hired)
    before = sim.request_index  # requests are numbered from 1: this is the last one so far

    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    member_lists = {r.target.split("/")[4] for r in sim.requests() if r.index > before and r.endpoint == "groups.users"}
    # `first`, whose last change has no event yet; `third` too when the engine reads the new
    # user's groups (`read_user`); never `second`, which the log tells in full
    assert first in member_lists and second not in member_lists
    assert engine.view() == org_view(org)
    late.release()
    clock.advance(minutes=1)
    org.rename_group(third, "Third Renamed")

    assert engine.cycle().status == "succeeded"
    assert engine.view() == org_view(org)


# --- app scope ------------------------------------------------------------------------------


@pytest.fixture()
def app_cycles(make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator, org: OktaOrg) -> Cycles:
    return Cycles(make_connector, clock, sim, app_id=org.app_id)


def test_app_scope_takes_deltas_only_for_assigned_groups(app_cycles: Cycles, org: OktaOrg) -> None:
    app = org.app_id
    assert app is not None
    assigned = sorted(org.app_groups[app])[0]
    elsewhere = next(g for g in org.group_ids[1:] if g not in org.app_groups[app])
    leaver = sorted(org.members[assigned])[0]
    org.remove_member(assigned, leaver)
    _, joiner = member_and_outsider(org, elsewhere)
    org.add_member(elsewhere, joiner)

    changes = app_cycles.changes()

    assert [d for d in changes.memberships if d.removed] == [MembershipDelta(assigned, removed=frozenset({leaver}))]
    assert all(d.group_external_id != elsewhere for d in changes.memberships)


def test_app_scope_a_newly_assigned_group_is_read_whole(app_cycles: Cycles, org: OktaOrg, sim: OktaSimulator) -> None:
    app = org.app_id
    assert app is not None
    group = next(g for g in org.group_ids[1:] if g not in org.app_groups[app])
    org.assign_group(app, group)

    changes = app_cycles.changes()

    assert re_read(changes) == {group: frozenset(org.members[group])}
