"""What Okta's System Log says about who entered and left one app's scope since the last
read (pure, no I/O): the app-scope counterpart of `connectors.okta_log`.

Okta logs `application.user_membership.add` / `.remove` (targets: the `User` and the
`AppInstance`) whenever a user's assignment to an app starts or ends, directly or through
a group. An incremental read in app scope keeps the app's users as the last read left them
(`Watermark.app_users`); with these events it tells the scope of every changed user
without asking Okta, except where the log cannot be trusted, by the rules `okta_log` uses
for group memberships:

- an event that arrived late: published before the last read started, or no later than
  the latest app event an earlier poll returned (`seen`). It may be older than what the
  last read already knew of that user;
- an event whose outcome is neither SUCCESS nor a refusal (FAILURE, DENY, SKIPPED: nothing
  changed), or whose time is unreadable.

Such a user is `doubtful`: the read asks Okta. An event for this app without exactly one
user cannot be placed at all (`unplaceable`): the read then asks Okta about every changed
user, as without a kept set. Otherwise each user's last event (by `published`, then log
order) says whether they entered or left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.okta_log import NOTHING_CHANGED, event_target, parse_time

APP_USER_ADDED = "application.user_membership.add"
APP_USER_REMOVED = "application.user_membership.remove"
APP_USER_EVENTS = (APP_USER_ADDED, APP_USER_REMOVED)


@dataclass(frozen=True)
class AppScopeChanges:
    """Users whose last trusted event put them in the app or took them out, users the log
    names but cannot be trusted on, and whether some event names no user at all."""

    entered: frozenset[str] = frozenset()
    left: frozenset[str] = frozenset()
    doubtful: frozenset[str] = frozenset()
    unplaceable: bool = False


def app_scope_changes(events: Iterable[Mapping[str, Any]], app_id: str, *, since: datetime,
                      seen: datetime | None) -> AppScopeChanges:
    """Decide each named user's scope (module docstring). `events` are this poll's, in log
    order; `since` the last read's start (Okta's clock); `seen` the latest `published` of
    an app event of `app_id` that earlier polls returned."""
    last: dict[str, tuple[datetime, int, bool]] = {}
    doubtful: set[str] = set()
    unplaceable = False
    for position, event in enumerate(_of_app(events, app_id)):
        outcome = event.get("outcome")
        result = outcome.get("result") if isinstance(outcome, Mapping) else None
        if result in NOTHING_CHANGED:
            continue
        user_id = event_target(event, "User")
        if user_id is None:
            unplaceable = True
            continue
        published = parse_time(event.get("published"))
        if result != "SUCCESS" or published is None or published < since or (seen is not None and published <= seen):
            doubtful.add(user_id)
            continue
        mark = (published, position, event.get("eventType") == APP_USER_ADDED)
        if user_id not in last or mark[:2] > last[user_id][:2]:
            last[user_id] = mark
    trusted = {uid: added for uid, (_, _, added) in last.items() if uid not in doubtful}
    return AppScopeChanges(
        entered=frozenset(uid for uid, added in trusted.items() if added),
        left=frozenset(uid for uid, added in trusted.items() if not added),
        doubtful=frozenset(doubtful),
        unplaceable=unplaceable,
    )


def latest_app_event(events: Iterable[Mapping[str, Any]], app_id: str) -> datetime | None:
    """The latest `published` of the app events of `app_id` among `events` (None: none)."""
    times = (parse_time(e.get("published")) for e in _of_app(events, app_id))
    return max((t for t in times if t is not None), default=None)


def _of_app(events: Iterable[Mapping[str, Any]], app_id: str) -> Iterable[Mapping[str, Any]]:
    """The app membership events whose `AppInstance` target is `app_id`."""
    for event in events:
        if event.get("eventType") not in APP_USER_EVENTS:
            continue
        targets = event.get("target")
        if isinstance(targets, list) and any(
                isinstance(t, Mapping) and t.get("type") == "AppInstance" and t.get("id") == app_id for t in targets):
            yield event

