"""What Okta's System Log says about group memberships since the last read (pure, no I/O).

An incremental read lists the groups whose `lastMembershipUpdated` moved and polls the
System Log; `membership_changes` decides, group by group, whether the log's
`group.user_membership.add` / `.remove` events (targets: the `User` and the `UserGroup`)
tell the change in full, as a `MembershipDelta`, or whether the group's member list must be
re-read. The log is trusted only where it provably covers the change; in doubt, re-read:

- a group created within the window (the store cannot know its earlier members), or whose
  record changed (`lastUpdated`: a renamed group the store may not hold yet needs them all);
- a group whose `lastMembershipUpdated` is later than its last event in this poll: a
  change the log has not shown yet (events are persisted a little late) or never will
  (group rules, imports, a deleted user's memberships);
- a group with an event that arrived late: published before the last read started, or no
  later than the latest membership event an earlier poll returned (`seen`, kept in the
  watermark: the read's start is only known to the second). Such an event may be older
  than one already applied for the same member, or than a change an earlier re-read saw;
- a group with an event whose outcome is neither SUCCESS nor a refusal (FAILURE, DENY,
  SKIPPED: nothing changed), or whose time is unreadable;
- every group whose membership moved or that has events, when any membership event lacks
  its user or group: that change cannot be placed.

A listed group whose stamps have not moved since a read within the overlap handled it
(`unchanged`, from the watermark's marks) is listed only because the filters look back over
the overlap: its stamps call for no re-read (the cursor is past the events that explained
them), and only its events in this poll can, by the rules above.

Otherwise each member's last event (by `published`, then log order: a polling request
returns events in persistence order, not by `published`) says whether they were added or
removed. A group the log names but the group list does not (Okta's filter index lags)
gets its delta too (or is re-read, by the same rules); one the directory does not hold is
ignored by the engine.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconcile.model import MembershipDelta

MEMBER_ADDED = "group.user_membership.add"
MEMBER_REMOVED = "group.user_membership.remove"
MEMBERSHIP_EVENTS = (MEMBER_ADDED, MEMBER_REMOVED)
NOTHING_CHANGED = frozenset({"FAILURE", "DENY", "SKIPPED"})  # outcomes of refused attempts

NEW_GROUP = "created since the last read"
RECORD_CHANGED = "its record changed"
NOT_COVERED = "no event covers its last membership change"
LATE_EVENT = "an event arrived after a later read had begun"
UNREADABLE_EVENT = "an event the log cannot place"


def parse_time(text: Any) -> datetime | None:
    """An Okta timestamp (`2026-01-05T09:00:00.000Z`), or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class GroupStamps:
    """What the group list says of one group whose record or membership moved."""

    group_id: str
    created: datetime | None
    last_updated: datetime | None
    last_membership_updated: datetime | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> GroupStamps:
        return cls(str(raw.get("id")), parse_time(raw.get("created")), parse_time(raw.get("lastUpdated")),
                   parse_time(raw.get("lastMembershipUpdated")))


@dataclass(frozen=True, slots=True)
class _Event:
    group_id: str
    user_id: str
    added: bool
    published: datetime
    position: int


@dataclass(frozen=True)
class MembershipChanges:
    """Deltas for the groups the log explains; the others to re-read, each with why."""

    deltas: tuple[MembershipDelta, ...] = ()
    reread: Mapping[str, str] = field(default_factory=dict)


def membership_changes(
    events: Iterable[Mapping[str, Any]],
    moved: Iterable[GroupStamps],
    *,
    since: datetime,
    window_start: datetime,
    seen: datetime | None,
    unchanged: Collection[str] = (),
) -> MembershipChanges:
    """Decide deltas and re-reads (module docstring). `events` are this poll's, in log
    order; `moved` the groups listed as changed after `window_start` (the last read's
    start, `since`, less the overlap); `seen` the latest `published` of a membership event
    earlier polls returned; `unchanged` the ids of groups in `moved` whose stamps are as
    they were when a read handled them."""
    readable: list[_Event] = []
    doubtful: set[str] = set()
    unplaceable = False
    for position, event in enumerate(events):
        if event.get("eventType") not in MEMBERSHIP_EVENTS:
            continue
        group_id, user_id = event_target(event, "UserGroup"), event_target(event, "User")
        outcome = event.get("outcome")
        result = outcome.get("result") if isinstance(outcome, Mapping) else None
        if result in NOTHING_CHANGED:
            continue
        if group_id is None or user_id is None:
            unplaceable = True
            continue
        published = parse_time(event.get("published"))
        if result != "SUCCESS" or published is None:
            doubtful.add(group_id)
            continue
        readable.append(_Event(group_id, user_id, event.get("eventType") == MEMBER_ADDED, published, position))

    by_group: dict[str, list[_Event]] = {}
    for item in readable:
        by_group.setdefault(item.group_id, []).append(item)

    def late(event: _Event) -> bool:
        return event.published < since or (seen is not None and event.published <= seen)

    def doubt(group_id: str, membership_moved: bool) -> str | None:
        """Why this group's events cannot be trusted, if they cannot."""
        group_events = by_group.get(group_id, [])
        if group_id in doubtful or (unplaceable and (membership_moved or group_events)):
            return UNREADABLE_EVENT
        if any(late(e) for e in group_events):
            return LATE_EVENT
        return None

    reread: dict[str, str] = {}
    for stamps in moved:
        if stamps.group_id in unchanged:
            # handled already: a doubt about its events still re-reads it (membership_moved
            # keeps an unplaceable event's doubt on it, as before it was handled)
            if (why := doubt(stamps.group_id, True)) is not None:
                reread[stamps.group_id] = why
            continue
        why = _record_changed(stamps, window_start)
        if why is None:
            last_change = stamps.last_membership_updated
            membership_moved = last_change is None or last_change > window_start
            why = doubt(stamps.group_id, membership_moved)
            if why is None and membership_moved and not _covered(last_change, by_group.get(stamps.group_id, [])):
                why = NOT_COVERED
        if why is not None:
            reread[stamps.group_id] = why
    for group_id in by_group.keys() | doubtful:
        if group_id not in reread and (why := doubt(group_id, False)) is not None:
            reread[group_id] = why

    deltas = (_delta(group_id, group_events) for group_id, group_events in sorted(by_group.items())
              if group_id not in reread)
    return MembershipChanges(tuple(d for d in deltas if d.added or d.removed), reread)


def latest_membership_event(events: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The latest `published` of the membership events among `events` (None: there are none)."""
    times = [parse_time(e.get("published")) for e in events if e.get("eventType") in MEMBERSHIP_EVENTS]
    return max((t for t in times if t is not None), default=None)


def _record_changed(stamps: GroupStamps, window_start: datetime) -> str | None:
    if stamps.created is None or stamps.created > window_start:
        return NEW_GROUP
    if stamps.last_updated is None or stamps.last_updated > window_start:
        return RECORD_CHANGED
    return None


def _covered(last_change: datetime | None, events: list[_Event]) -> bool:
    """Whether an event is as late as the group's last membership change."""
    return last_change is not None and any(e.published >= last_change for e in events)


def _delta(group_id: str, events: list[_Event]) -> MembershipDelta:
    last: dict[str, bool] = {}
    for event in sorted(events, key=lambda e: (e.published, e.position)):
        last[event.user_id] = event.added
    return MembershipDelta(
        group_id,
        added=frozenset(u for u, added in last.items() if added),
        removed=frozenset(u for u, added in last.items() if not added),
    )


def event_target(event: Mapping[str, Any], kind: str) -> str | None:
    """The id of the event's one target of type `kind`; None when it has none or several."""
    targets = event.get("target")
    found = [t.get("id") for t in targets if isinstance(t, Mapping) and t.get("type") == kind] \
        if isinstance(targets, list) else []
    return found[0] if len(found) == 1 and isinstance(found[0], str) and found[0] else None
