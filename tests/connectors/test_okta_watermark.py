"""The Okta watermark's marks of handled groups: which groups a read keeps, how many, and
how they are written and read back (`connectors.okta_watermark`, pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.okta_watermark import MAX_HANDLED_GROUPS, Watermark, group_mark, handled_marks, okta_time

STARTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Okta's time when the read began
OVERLAP = timedelta(minutes=5)


def group(gid: str, membership: datetime, updated: datetime | None = None) -> dict[str, Any]:
    return {"id": gid, "lastMembershipUpdated": okta_time(membership),
            "lastUpdated": okta_time(updated or STARTED - timedelta(days=30))}


def before(minutes: float) -> datetime:
    return STARTED - timedelta(minutes=minutes)


def test_a_read_keeps_the_marks_of_groups_whose_last_change_the_next_read_lists_again() -> None:
    recent, renamed = group("recent", before(1)), group("renamed", before(10), updated=before(2))
    while_reading = group("while-reading", STARTED + timedelta(milliseconds=300))
    others = [group("old", before(6)), group("at-the-edge", before(5)),
              {"id": "no-stamps"}, {"lastUpdated": okta_time(before(1))}, "not a group"]

    marks = handled_marks([recent, renamed, while_reading, *others], STARTED, OVERLAP)

    assert marks == {"recent": group_mark(recent), "renamed": group_mark(renamed),
                     "while-reading": group_mark(while_reading)}


def test_past_the_bound_the_groups_changed_latest_are_kept() -> None:
    groups = [group(f"g{i:05}", before(4) + timedelta(milliseconds=i)) for i in range(MAX_HANDLED_GROUPS + 10)]

    marks = handled_marks(groups, STARTED, OVERLAP)

    assert len(marks) == MAX_HANDLED_GROUPS
    assert "g00009" not in marks and f"g{MAX_HANDLED_GROUPS + 9:05}" in marks


def test_marks_are_written_and_read_back() -> None:
    mark = group_mark(group("g1", before(1)))
    assert mark is not None
    watermark = Watermark("org", STARTED, STARTED, "/api/v1/logs?after=1", None, {"g1": mark})

    assert Watermark.parse(watermark.dump()) == watermark


def test_a_watermark_without_marks_or_with_unreadable_ones_reads_as_having_none() -> None:
    fields = json.loads(Watermark("org", STARTED, STARTED, "/api/v1/logs?after=1").dump())
    without = {k: v for k, v in fields.items() if k != "groups"}
    unreadable = [{**fields, "groups": value} for value in ([1], {"g1": "x"}, {"g1": ["a"]}, {"g1": [1, 2]})]

    for text in [json.dumps(without)] + [json.dumps(u) for u in unreadable]:
        parsed = Watermark.parse(text)
        assert parsed is not None and parsed.handled == {}


def test_the_apps_users_are_written_and_read_back_and_left_packed_when_unchanged() -> None:
    users = frozenset({"00u1", "00u2", "00u3"})
    watermark = Watermark("app:0oa1", STARTED, STARTED, "/api/v1/logs?after=1", None, {}, users, before(1))

    read = Watermark.parse(watermark.dump())

    assert read == watermark and read is not None
    empty = Watermark("app:0oa1", STARTED, STARTED, "/api/v1/logs?after=1", app_users=frozenset())
    assert Watermark.parse(empty.dump()) == empty
    packed = json.loads(watermark.dump())["app"]["users"]
    again = Watermark(read.scope, read.full_at, read.since, read.log_cursor, read.seen, read.handled,
                      read.app_users, read.app_seen, read.packed_app_users)
    assert json.loads(again.dump())["app"]["users"] == packed
    assert "00u1" not in watermark.dump()  # packed, not listed


def test_unreadable_app_users_read_as_none_kept() -> None:
    fields = json.loads(Watermark("app:0oa1", STARTED, STARTED, "/api/v1/logs?after=1",
                                  app_users=frozenset({"00u1"})).dump())
    for value in ("not base64!", "aGVsbG8=", 1, None, {"users": "eJzLSM3JyQcABiwCFQ=="}):
        app = value if isinstance(value, dict) else {"users": value, "seen": None}
        parsed = Watermark.parse(json.dumps({**fields, "app": app}))
        if isinstance(value, dict):  # "hello", compressed: one id, an odd one but readable
            assert parsed is not None and parsed.app_users == {"hello"}
            continue
        assert parsed is not None and parsed.app_users is None and parsed.log_cursor == fields["log"]
    bad_seen = {**fields, "app": {**fields["app"], "seen": "2026-03-02T09:00:00"}}
    parsed = Watermark.parse(json.dumps(bad_seen))
    assert parsed is not None and parsed.app_users is None
