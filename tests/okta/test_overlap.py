"""Reads that follow one another within `overlap_minutes`: the group filter lists again the
groups the last read handled (their stamps are still inside the overlap), but the System
Log cursor is past their events. A group whose stamps did not move since it was handled is
not re-read; one that changed again still is."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from connectors.okta import OktaConnector
from connectors.okta_watermark import Watermark
from reconcile.model import Changes, MembershipDelta, Snapshot
from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator
from tests.okta.conftest import MakeConnector
from tests.okta.test_log_deltas import LIST_ONLY, member_and_outsider, re_read


class CloseReads:
    """A full read, then incremental reads a minute or two apart (well within the default
    five minutes of overlap), each from the last one's watermark."""

    def __init__(self, connector: OktaConnector, clock: ManualClock, sim: OktaSimulator) -> None:
        self.connector = connector
        self.clock = clock
        self.sim = sim
        first = connector.read(None)
        assert isinstance(first, Snapshot)
        self.watermark = first.watermark

    def changes(self, after_minutes: float = 1) -> Changes:
        self.clock.advance(minutes=after_minutes)
        self.sim.reset_counts()
        result = self.connector.read(self.watermark)
        assert isinstance(result, Changes), type(result)
        self.watermark = result.watermark
        return result


@pytest.fixture()
def reads(make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator) -> Iterator[CloseReads]:
    yield CloseReads(make_connector(), clock, sim)


def nothing(changes: Changes) -> bool:
    return changes == Changes(watermark=changes.watermark)


@pytest.mark.parametrize("changed_before_the_read", [60.0, 0.0], ids=["a-minute-before", "the-same-instant"])
def test_a_read_right_after_one_that_applied_membership_events_costs_three_requests(
    reads: CloseReads, org: OktaOrg, sim: OktaSimulator, changed_before_the_read: float
) -> None:
    first, second = org.group_ids[1], org.group_ids[2]
    leaver, joiner = member_and_outsider(org, first)
    other = next(u for u in org.user_ids if u not in org.members[second])
    org.remove_member(first, leaver)
    org.add_member(first, joiner)
    org.add_member(second, other)
    applied = reads.changes(after_minutes=changed_before_the_read / 60)
    assert applied.memberships == (
        MembershipDelta(first, added=frozenset({joiner}), removed=frozenset({leaver})),
        MembershipDelta(second, added=frozenset({other})),
    )

    again = reads.changes()
    and_again = reads.changes()  # still inside the overlap: what the last read skipped stays skipped

    assert nothing(again) and nothing(and_again)
    assert sim.counts() == LIST_ONLY


def test_groups_re_read_whole_are_not_re_read_by_the_next_read(
    reads: CloseReads, org: OktaOrg, sim: OktaSimulator
) -> None:
    created = org.create_group("Newcomers")
    org.add_member(created, org.user_ids[3])
    renamed = org.group_ids[1]
    org.rename_group(renamed, "Renamed Team")
    silent = org.group_ids[2]
    _, joiner = member_and_outsider(org, silent)
    with org.held_log() as late:  # a change the log does not show yet
        org.add_member(silent, joiner)
    assert set(re_read(reads.changes())) == {created, renamed, silent}
    late.release()  # arrives late: the group is re-read once more, as any late event's
    assert set(re_read(reads.changes())) == {silent}

    again = reads.changes()

    assert nothing(again)
    assert sim.counts() == LIST_ONLY


def test_a_full_read_counts_as_handling_the_groups_it_read(
    make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator, org: OktaOrg
) -> None:
    group = org.group_ids[1]
    _, joiner = member_and_outsider(org, group)
    org.add_member(group, joiner)
    clock.advance(minutes=1)
    reads = CloseReads(make_connector(), clock, sim)

    assert nothing(reads.changes())
    assert sim.counts() == LIST_ONLY


def test_a_group_that_changed_again_within_the_overlap_is_still_read(
    reads: CloseReads, org: OktaOrg, clock: ManualClock
) -> None:
    logged, silent, renamed = org.group_ids[1], org.group_ids[2], org.group_ids[3]
    for group in (logged, silent, renamed):
        org.add_member(group, member_and_outsider(org, group)[1])
    reads.changes()
    # between the reads, inside the overlap: each group's stamps move again
    clock.advance(seconds=20)
    _, joiner = member_and_outsider(org, logged)
    org.add_member(logged, joiner)
    leaver, _ = member_and_outsider(org, silent)
    with org.held_log() as late:
        org.remove_member(silent, leaver)
    org.rename_group(renamed, "Renamed Team")

    changes = reads.changes()

    assert changes.memberships == (MembershipDelta(logged, added=frozenset({joiner})),)
    assert re_read(changes) == {silent: frozenset(org.members[silent]), renamed: frozenset(org.members[renamed])}
    assert leaver not in org.members[silent]
    assert {g.name for g in changes.groups if g.external_id == renamed} == {"Renamed Team"}
    late.release()


def test_the_watermark_keeps_only_the_groups_still_inside_the_overlap(reads: CloseReads, org: OktaOrg) -> None:
    group = org.group_ids[1]
    org.add_member(group, member_and_outsider(org, group)[1])
    reads.changes()
    inside = Watermark.parse(reads.watermark)

    reads.changes(after_minutes=6)  # past the overlap: the filter no longer lists the group
    outside = Watermark.parse(reads.watermark)

    assert inside is not None and set(inside.handled) == {group}
    assert outside is not None and outside.handled == {}


def test_a_watermark_without_handled_groups_still_reads_incrementally(
    reads: CloseReads, org: OktaOrg, make_connector: MakeConnector, sim: OktaSimulator
) -> None:
    group = org.group_ids[1]
    org.add_member(group, member_and_outsider(org, group)[1])
    reads.changes()
    current = Watermark.parse(reads.watermark)
    assert current is not None and current.handled
    fields = json.loads(current.dump())
    del fields["groups"]
    older = json.dumps(fields)  # as an earlier dirsync wrote it
    assert Watermark.parse(older) == Watermark(current.scope, current.full_at, current.since, current.log_cursor,
                                               current.seen)

    sim.reset_counts()
    result = make_connector().read(older)

    # without the marks the group is re-read, as before they existed: correct, only dearer
    assert isinstance(result, Changes) and set(re_read(result)) == {group}


def test_app_scope_a_read_right_after_one_that_applied_membership_events_costs_three_requests(
    make_connector: MakeConnector, clock: ManualClock, sim: OktaSimulator, org: OktaOrg
) -> None:
    app = org.app_id
    assert app is not None
    reads = CloseReads(make_connector(app_id=app), clock, sim)
    group = sorted(org.app_groups[app])[0]
    in_app = org.app_user_ids(app)[1]
    joiner = next(u for u in sorted(in_app) if u not in org.members[group])
    org.add_member(group, joiner)
    assert MembershipDelta(group, added=frozenset({joiner})) in reads.changes().memberships

    again = reads.changes()

    assert nothing(again)
    assert sim.counts() == {"logs": 1, "users.list": 1, "apps.groups": 1}
