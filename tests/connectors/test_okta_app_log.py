"""Who entered and left an app's scope by the System Log, and whom the read must ask Okta
about instead (`connectors.okta_app_log`, pure: events in, a decision out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.okta_app_log import AppScopeChanges, app_scope_changes, latest_app_event

SINCE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the last read began
APP = "0oa-ours"


def at(minutes: float) -> datetime:
    return SINCE + timedelta(minutes=minutes)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def event(kind: str, user: str | None, when: datetime, *, app: str = APP, result: str = "SUCCESS",
          published: str | None = None) -> dict[str, Any]:
    targets = ([{"id": user, "type": "User"}] if user else []) + [{"id": app, "type": "AppInstance"}]
    return {"eventType": f"application.user_membership.{kind}", "published": published or stamp(when),
            "target": targets, "outcome": {"result": result, "reason": None}}


def decide(events: list[dict[str, Any]], seen: datetime | None = None) -> AppScopeChanges:
    return app_scope_changes(events, APP, since=SINCE, seen=seen)


def test_each_users_last_event_says_entered_or_left_in_published_order() -> None:
    events = [event("add", "u1", at(1)), event("remove", "u2", at(2)),
              event("remove", "u3", at(4)), event("add", "u3", at(3)),  # persisted out of order
              event("add", "u4", at(5)), event("remove", "u4", at(5))]  # same time: log order

    decided = decide(events)

    assert decided == AppScopeChanges(entered=frozenset({"u1"}), left=frozenset({"u2", "u3", "u4"}))


def test_late_events_make_their_user_doubtful_whatever_else_the_log_says() -> None:
    events = [event("remove", "before-the-read", at(-1)), event("add", "before-the-read", at(2)),
              event("add", "seen-already", at(3)), event("remove", "after", at(3.5))]

    decided = decide(events, seen=at(3))

    assert decided.doubtful == {"before-the-read", "seen-already"}
    assert (decided.entered, decided.left) == (frozenset(), frozenset({"after"}))


def test_an_unknown_outcome_or_time_is_doubtful_and_a_refused_change_is_no_change() -> None:
    events = [event("add", "unknown", at(1), result="UNKNOWN"), event("add", "no-time", at(1), published="soon"),
              event("add", "refused", at(1), result="DENY"), event("remove", "failed", at(1), result="FAILURE")]

    decided = decide(events)

    assert decided == AppScopeChanges(doubtful=frozenset({"unknown", "no-time"}))


def test_an_event_without_exactly_one_user_cannot_be_placed() -> None:
    two_users = event("add", "u1", at(1))
    two_users["target"].append({"id": "u2", "type": "User"})

    for unplaceable in (event("add", None, at(1)), two_users):
        assert decide([unplaceable, event("add", "u3", at(2))]) == AppScopeChanges(
            entered=frozenset({"u3"}), unplaceable=True)


def test_other_apps_and_other_event_types_are_not_ours() -> None:
    group_event = {**event("add", "u2", at(1)), "eventType": "group.user_membership.add"}
    events = [event("add", "u1", at(1), app="0oa-other"), group_event, event("add", None, at(1), app="0oa-other")]

    assert decide(events) == AppScopeChanges()
    assert latest_app_event(events, APP) is None


def test_the_latest_app_event_of_the_app_is_what_the_watermark_keeps() -> None:
    events = [event("add", "u1", at(2)), event("remove", "u2", at(7), app="0oa-other"),
              event("add", "u3", at(1), published="unreadable")]

    assert latest_app_event(events, APP) == at(2)
