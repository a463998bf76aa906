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
