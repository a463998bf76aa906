"""When the System Log tells a group's membership change in full, and when the group is re-read
(`connectors.okta_log`, pure: events and group stamps in, a decision out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.okta_log import (
    LATE_EVENT,
    NEW_GROUP,
    NOT_COVERED,
    RECORD_CHANGED,
    UNREADABLE_EVENT,
    GroupStamps,
    MembershipChanges,
    latest_membership_event,
    membership_changes,
)
from reconcile.model import MembershipDelta

SINCE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the last read began
WINDOW = SINCE - timedelta(minutes=5)  # less the overlap
OLD = SINCE - timedelta(days=30)


def at(minutes: float) -> datetime:
    return SINCE + timedelta(minutes=minutes)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def event(kind: str, user: str | None, group: str | None, when: datetime, result: str = "SUCCESS") -> dict[str, Any]:
    targets = [{"id": user, "type": "User"}] if user else []
    targets += [{"id": group, "type": "UserGroup"}] if group else []
    return {"eventType": f"group.user_membership.{kind}", "published": stamp(when), "target": targets,
            "outcome": {"result": result, "reason": None}}


def moved(group: str, membership: datetime | None, *, created: datetime = OLD, updated: datetime = OLD) -> GroupStamps:
    return GroupStamps(group, created, updated, membership)


def decide(events: list[dict[str, Any]], groups: list[GroupStamps], seen: datetime | None = None) -> MembershipChanges:
    return membership_changes(events, groups, since=SINCE, window_start=WINDOW, seen=seen)


def test_each_members_last_event_says_added_or_removed() -> None:
    events = [event("add", "u1", "g1", at(1)), event("remove", "u2", "g1", at(2)),
              event("add", "u3", "g1", at(3)), event("remove", "u3", "g1", at(4))]

    decided = decide(events, [moved("g1", at(4))])

    assert decided.deltas == (MembershipDelta("g1", added=frozenset({"u1"}), removed=frozenset({"u2", "u3"})),)
    assert decided.reread == {}


def test_events_apply_in_published_order_not_log_order() -> None:
    events = [event("remove", "u1", "g1", at(2)), event("add", "u1", "g1", at(1))]

    assert decide(events, [moved("g1", at(2))]).deltas == (MembershipDelta("g1", removed=frozenset({"u1"})),)


def test_a_membership_change_later_than_every_event_re_reads_the_group() -> None:
    decided = decide([event("add", "u1", "g1", at(1))], [moved("g1", at(3)), moved("g2", at(2))])

    assert decided.reread == {"g1": NOT_COVERED, "g2": NOT_COVERED} and decided.deltas == ()


def test_an_event_from_before_the_last_read_began_re_reads_its_group() -> None:
    decided = decide([event("add", "u1", "g1", SINCE - timedelta(milliseconds=1))], [moved("g1", at(0.5))])

    assert decided.reread == {"g1": LATE_EVENT} and decided.deltas == ()


def test_an_event_no_later_than_one_an_earlier_poll_returned_re_reads_its_group() -> None:
    # The last read's start is known to the second only: an event within that second may
    # be older than one the last poll returned, so it is late too.
    events = [event("add", "u1", "g1", at(0.01)), event("add", "u2", "g2", at(0.03))]

    decided = decide(events, [moved("g1", at(0.01)), moved("g2", at(0.03))], seen=at(0.02))

    assert decided.reread == {"g1": LATE_EVENT}
    assert decided.deltas == (MembershipDelta("g2", added=frozenset({"u2"})),)


def test_new_and_changed_groups_are_re_read_whole() -> None:
    decided = decide([event("add", "u1", "g1", at(1))],
                     [moved("g1", at(1), created=at(1)), moved("g2", OLD, updated=at(2))])

    assert decided.reread == {"g1": NEW_GROUP, "g2": RECORD_CHANGED} and decided.deltas == ()


def test_a_group_listed_without_a_membership_change_needs_nothing() -> None:
    assert decide([], [moved("g1", WINDOW)]) == MembershipChanges()


def test_refused_attempts_change_nothing() -> None:
    events = [event("add", "u1", "g1", at(1), result="FAILURE"), event("remove", "u2", "g1", at(1), result="DENY")]

    assert decide(events, []) == MembershipChanges()


def test_an_event_of_unknown_outcome_re_reads_its_group() -> None:
    decided = decide([event("add", "u1", "g1", at(1), result="UNKNOWN"), event("add", "u2", "g2", at(1))],
                     [moved("g1", at(1)), moved("g2", at(1))])

    assert decided.reread == {"g1": UNREADABLE_EVENT}
    assert decided.deltas == (MembershipDelta("g2", added=frozenset({"u2"})),)


def test_an_event_without_its_group_re_reads_every_group_that_moved() -> None:
    events = [event("add", "u1", None, at(1)), event("add", "u2", "g1", at(1)), event("add", "u3", "g3", at(1))]

    decided = decide(events, [moved("g1", at(1)), moved("g2", at(1)), moved("g4", WINDOW)])

    assert decided.reread == {"g1": UNREADABLE_EVENT, "g2": UNREADABLE_EVENT, "g3": UNREADABLE_EVENT}
    assert decided.deltas == ()


def test_an_event_with_an_unreadable_time_re_reads_its_group() -> None:
    broken = {**event("add", "u1", "g1", at(1)), "published": "yesterday"}

    assert decide([broken], [moved("g1", at(1))]).reread == {"g1": UNREADABLE_EVENT}


def test_a_group_the_list_does_not_show_yet_still_gets_its_delta() -> None:
    # Okta's group filter lags; the event is the truth
    assert decide([event("add", "u1", "g9", at(1))], []).deltas == (MembershipDelta("g9", added=frozenset({"u1"})),)


def test_other_event_types_are_ignored() -> None:
    other = {**event("add", "u1", "g1", at(1)), "eventType": "group.lifecycle.delete"}

    assert decide([other], []) == MembershipChanges()


def test_the_latest_membership_event_is_what_the_watermark_keeps() -> None:
    events = [event("add", "u1", "g1", at(2)), event("remove", "u1", "g1", at(1)),
              {"eventType": "group.lifecycle.delete", "published": stamp(at(9))}]

    assert latest_membership_event(events) == at(2)
    assert latest_membership_event([]) is None


# --- groups a read within the overlap already handled (`unchanged`) -------------------------


def test_a_group_unchanged_since_it_was_handled_is_not_re_read_for_its_stamps() -> None:
    # listed again only because the filters look back over the overlap; its events were
    # in the last poll, so none are in this one
    groups = [moved("g1", WINDOW + timedelta(minutes=1)), moved("g2", at(1), created=WINDOW + timedelta(minutes=2)),
              moved("g3", OLD, updated=WINDOW + timedelta(minutes=3))]

    decided = membership_changes([], groups, since=SINCE, window_start=WINDOW, seen=None,
                                 unchanged={"g1", "g2", "g3"})

    assert decided == MembershipChanges()


def test_an_unchanged_group_still_takes_its_events_and_their_doubts() -> None:
    events = [event("add", "u1", "g1", at(1)), event("add", "u2", "g2", SINCE - timedelta(seconds=1))]

    decided = membership_changes(events, [moved("g1", WINDOW), moved("g2", WINDOW)], since=SINCE,
                                 window_start=WINDOW, seen=None, unchanged={"g1", "g2"})

    assert decided.deltas == (MembershipDelta("g1", added=frozenset({"u1"})),)
    assert decided.reread == {"g2": LATE_EVENT}


def test_an_event_without_its_group_still_re_reads_an_unchanged_group() -> None:
    decided = membership_changes([event("add", "u1", None, at(1))], [moved("g1", at(-1))], since=SINCE,
                                 window_start=WINDOW, seen=None, unchanged={"g1"})

    assert decided.reread == {"g1": UNREADABLE_EVENT}
