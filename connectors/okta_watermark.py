"""Where an Okta read left off: the watermark the engine stores for an `okta` directory.

It is this module's JSON: the connector's scope, when the last full read happened (our
clock), the server's time at the start of the last read (Okta's clock), the System Log
cursor, the latest membership event any poll has returned (`connectors.okta_log`), and the
marks of the groups the last read brought up to date whose last change is still inside the
overlap (`handled_marks`), and in app scope the app's users as the last read left them with
the latest app event any poll returned (`connectors.okta_app_log`).

Why the marks: the next read's group filter starts `overlap_minutes` before this read
began, so it lists these groups again, while the log cursor is already past their events;
without the marks each such group would look changed with no event to tell how, and its
members would be re-read. A group whose mark is unchanged was not changed since.

Why the app's users: a changed user's scope is the app's business alone (the store does not
know the users it never created, and holds some that left the app), and the System Log
tells only who entered or left. The ids are kept sorted, one per line, compressed: about
18 bytes per user for Okta's random 20-character ids, 1.2 MB for 66,000. A watermark without them (written
before they were kept, or after a read that could not tell them) still reads: the next
read asks Okta about each changed user instead.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.okta_log import parse_time

__all__ = ["GroupMark", "MAX_HANDLED_GROUPS", "Watermark", "group_mark", "handled_marks", "okta_time"]

# A group's `lastMembershipUpdated` and `lastUpdated`, as `okta_time` writes them.
GroupMark = tuple[str, str]

# Groups changed within one overlap rarely number more than a few hundred (526 for a 1 %
# change of 100,000 users in `bench/okta_bench.py`); a mark costs about 80 bytes of
# watermark. Past this many, the ones changed earliest are left out (each costs one re-read
# of its members, no more).
MAX_HANDLED_GROUPS = 2000

# 2: the log cursor follows membership events too; a version-1 cursor does not, so its
# watermark is unreadable and the next read is a full one.
WATERMARK_VERSION = 2


def okta_time(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Watermark:
    """Where the last read left off. `since` is Okta's clock; `full_at` is ours."""

    scope: str
    full_at: datetime
    since: datetime
    log_cursor: str  # path and query of the System Log `next` link
    # The latest `published` of a membership event any poll has returned (`okta_log`).
    seen: datetime | None = None
    # Group id -> its mark when the last read handled it, for groups still inside the overlap.
    # A watermark written before the marks existed has none: each such group is re-read once.
    handled: Mapping[str, GroupMark] = field(default_factory=dict)
    # App scope: the ids of the app's users as the last read left them (None: not known),
    # and the latest `published` of an app event of the app any poll has returned.
    app_users: frozenset[str] | None = None
    app_seen: datetime | None = None
    # `app_users` as read, packed: a read that leaves them unchanged writes them back as they
    # were, without sorting and compressing them again (85 ms for 66,000 users).
    packed_app_users: tuple[frozenset[str], str] | None = field(default=None, compare=False, repr=False)

    def dump(self) -> str:
        packed = self.packed_app_users
        app = None if self.app_users is None else {
            "users": packed[1] if packed is not None and packed[0] is self.app_users else _packed(self.app_users),
            "seen": okta_time(self.app_seen) if self.app_seen is not None else None,
        }
        return json.dumps({
            "v": WATERMARK_VERSION,
            "scope": self.scope,
            "full_at": self.full_at.isoformat(),
            "since": okta_time(self.since),
            "log": self.log_cursor,
            "seen": okta_time(self.seen) if self.seen is not None else None,
            "groups": {gid: list(mark) for gid, mark in sorted(self.handled.items())},
            **({"app": app} if app is not None else {}),
        }, sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> Watermark | None:
        """The watermark in `text`, or None when it is missing or not one of ours."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if data.get("v") != WATERMARK_VERSION or not str(data["log"]).startswith("/api/v1/logs"):
                return None
            full_at, since = datetime.fromisoformat(data["full_at"]), _parse_time(data["since"])
            seen = _parse_time(data["seen"]) if data.get("seen") is not None else None
            if full_at.tzinfo is None or since.tzinfo is None or (seen is not None and seen.tzinfo is None):
                return None
            app_users, app_seen = _app(data.get("app"))
            packed = (app_users, data["app"]["users"]) if app_users is not None else None
            return cls(str(data["scope"]), full_at, since, str(data["log"]), seen, _marks(data.get("groups")),
                       app_users, app_seen, packed)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def group_mark(raw: Mapping[str, Any]) -> GroupMark | None:
    """The mark of a group record; None when either stamp is missing or unreadable."""
    membership, record = parse_time(raw.get("lastMembershipUpdated")), parse_time(raw.get("lastUpdated"))
    if membership is None or record is None:
        return None
    return okta_time(membership), okta_time(record)


def handled_marks(raw_groups: Iterable[Any], started: datetime, overlap: timedelta) -> dict[str, GroupMark]:
    """The marks to keep of the groups a read brought up to date: those whose last change
    the next read's filters will list again (later than `started`, Okta's time when the
    read began, less the overlap), at most `MAX_HANDLED_GROUPS`, the latest first.

    A mark is as read from the group list, so a later change moves it, except one made in
    the very millisecond of the group's last change, after the list was read. Such a change
    still comes in through its System Log event; only one Okta does not log would wait for
    the next full read (the log's rules place the same trust in millisecond stamps)."""
    window_start = started - overlap
    kept: list[tuple[datetime, str, GroupMark]] = []
    for raw in raw_groups:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            continue
        membership, record = parse_time(raw.get("lastMembershipUpdated")), parse_time(raw.get("lastUpdated"))
        if membership is None or record is None:
            continue
        latest = max(membership, record)
        if latest > window_start:
            kept.append((latest, raw["id"], (okta_time(membership), okta_time(record))))
    kept.sort(reverse=True)
    return {gid: mark for _, gid, mark in kept[:MAX_HANDLED_GROUPS]}


def _marks(data: Any) -> dict[str, GroupMark]:
    """The `groups` field; absent or malformed, none (each group is then simply re-read)."""
    if not isinstance(data, dict):
        return {}
    return {gid: (mark[0], mark[1]) for gid, mark in data.items()
            if isinstance(mark, list) and len(mark) == 2 and all(isinstance(m, str) for m in mark)}


def _packed(ids: frozenset[str]) -> str:
    return base64.b64encode(zlib.compress("\n".join(sorted(ids)).encode(), 1)).decode("ascii")


def _app(data: Any) -> tuple[frozenset[str] | None, datetime | None]:
    """The `app` field; absent or unreadable, no kept users (the next read asks Okta)."""
    if not isinstance(data, dict) or not isinstance(data.get("users"), str):
        return None, None
    try:
        text = zlib.decompress(base64.b64decode(data["users"], validate=True)).decode()
        seen = _parse_time(data["seen"]) if data.get("seen") is not None else None
    except (ValueError, TypeError, zlib.error):
        return None, None
    if seen is not None and seen.tzinfo is None:
        return None, None
    return frozenset(text.split("\n")) if text else frozenset(), seen
