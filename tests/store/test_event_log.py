"""The provisioning log across runs (`service.history.event_page`): filters, newest-first
order by time, and keyset pages that neither repeat nor skip an event, also while events
are being written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String

from reconcile.model import Action, Kind, Operation, Ref, Rejection
from service.history import BadFilter, EventFilter, EventView, event_page, events
from store import Outcome, Store, start_run
from store.bulk import COPY_FROM_ROWS
from store.events import insert_events, operation_event, rejection_event
from tests.store.builders import create_user

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def add_member(group: str, email: str) -> Operation:
    """As the planner writes it: the group is the target, the member a value."""
    return Operation(Action.ADD_MEMBER, group, group=Ref(local_id=1), user=Ref(local_id=1), values=(("member", email),))


def deactivate(email: str, reason: str) -> Operation:
    return Operation(Action.DEACTIVATE_USER, email, user=Ref(local_id=1), values=(("active", False),),
                     old=(("active", True),), reason=reason)


def _run(store: Store, directory: str, at: datetime) -> int:
    with store.session() as session:
        return start_run(session, directory=directory, trigger="beat", mode="full", at=at)


def _write(store: Store, rows: list[dict]) -> None:  # type: ignore[type-arg]
    with store.session() as session:
        insert_events(session, rows)


def _users(store: Store, directory: str, emails: list[str], at: datetime, run: int | None = None) -> int:
    """One applied create-user event per email, all stamped `at`; returns the run."""
    run = run if run is not None else _run(store, directory, at)
    _write(store, [operation_event(run, i, create_user(f"x-{email}", email), Outcome.APPLIED, at=at)
                   for i, email in enumerate(emails, 1)])
    return run


def _walk(store: Store, where: EventFilter, size: int, between_pages: object = None) -> list[EventView]:
    """Every page from the newest, following `older`; `between_pages()` runs after each."""
    seen: list[EventView] = []
    cursor: str | None = None
    while True:
        page = event_page(store, where, limit=size, older_than=cursor)
        seen += page.events
        if callable(between_pages):
            between_pages()
        if page.older is None:
            return seen
        cursor = page.older


def test_the_log_filters_by_user_group_directory_action_outcome_and_reason(store: Store) -> None:
    okta = _run(store, "okta", T0)
    hr = _run(store, "hr", T0)
    _write(store, [
        operation_event(okta, 1, create_user("u1", "Ana@example.com"), Outcome.APPLIED, at=T0),
        operation_event(okta, 2, add_member("Engineering", "ana@example.com"), Outcome.APPLIED, at=T0),
        operation_event(okta, 3, deactivate("bo@example.com", "left-scope"), Outcome.STAGED, at=T0),
        rejection_event(hr, 1, Rejection(Kind.GROUP, "A" * 30, "name-too-long"), at=T0),
        operation_event(hr, 2, create_user("u9", "ana@example.com"), Outcome.CONFLICT, reason="managed", at=T0),
    ])

    def targets(**where: str) -> list[tuple[str, str]]:
        return [(e.action, e.target) for e in events(store, EventFilter(**where))]

    assert targets(user="ANA@EXAMPLE.COM") == [
        ("create-user", "ana@example.com"), ("add-member", "Engineering"), ("create-user", "Ana@example.com")]
    assert targets(group="engineering") == [("add-member", "Engineering")]
    assert targets(directory="hr") == [("create-user", "ana@example.com"), ("reject", "A" * 30)]
    assert targets(action="deactivate-user") == [("deactivate-user", "bo@example.com")]
    assert targets(outcome="staged") == [("deactivate-user", "bo@example.com")]
    assert targets(reason="name-too-long") == [("reject", "A" * 30)]
    assert targets(user="ana@example.com", directory="okta", outcome="applied") == [
        ("add-member", "Engineering"), ("create-user", "Ana@example.com")]
    assert targets(directory="nowhere") == []


def test_the_log_is_newest_first_by_time_whatever_order_events_were_written_in(store: Store) -> None:
    run = _run(store, "okta", T0)
    _users(store, "okta", ["late@example.com"], T0 + timedelta(hours=2), run)
    _users(store, "okta", ["early@example.com"], T0, run)
    _users(store, "okta", ["middle@example.com", "middle2@example.com"], T0 + timedelta(hours=1), run)

    shown = [e.target for e in events(store, EventFilter())]

    # Same time: the later written first.
    assert shown == ["late@example.com", "middle2@example.com", "middle@example.com", "early@example.com"]


def test_since_is_inclusive_and_until_exclusive(store: Store) -> None:
    run = _run(store, "okta", T0)
    for hour in range(4):
        _users(store, "okta", [f"h{hour}@example.com"], T0 + timedelta(hours=hour), run)

    shown = events(store, EventFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)))

    assert [e.target for e in shown] == ["h2@example.com", "h1@example.com"]


def test_walking_older_pages_shows_every_event_once_in_order(store: Store) -> None:
    # Many events share one time (a cycle's chunk): pages must cut inside such a tie.
    for n in range(5):
        _users(store, "okta", [f"r{n}u{i}@example.com" for i in range(7)], T0 + timedelta(minutes=n))
    everything = events(store, EventFilter(), limit=None)

    walked = _walk(store, EventFilter(), size=4)

    assert [e.id for e in walked] == [e.id for e in everything]
    assert len(everything) == 35


def test_pages_neither_repeat_nor_skip_while_new_events_are_written(store: Store) -> None:
    for n in range(3):
        _users(store, "okta", [f"old{n}-{i}@example.com" for i in range(10)], T0 + timedelta(minutes=n))
    before = events(store, EventFilter(), limit=None)
    written = iter(range(1000))

    def a_cycle_writes_more() -> None:
        n = next(written)
        _users(store, "okta", [f"new{n}-{i}@example.com" for i in range(3)], T0 + timedelta(hours=1, minutes=n))

    walked = _walk(store, EventFilter(), size=7, between_pages=a_cycle_writes_more)

    assert [e.id for e in walked] == [e.id for e in before]


def test_a_filtered_walk_returns_exactly_the_matching_events(store: Store) -> None:
    run = _run(store, "okta", T0)
    rows = []
    for i in range(30):
        op = add_member(f"Team {i % 3}", f"u{i}@example.com")
        rows.append(operation_event(run, i + 1, op, Outcome.FAILED if i % 4 == 0 else Outcome.APPLIED,
                                    at=T0 + timedelta(seconds=i // 5)))
    _write(store, rows)

    walked = _walk(store, EventFilter(group="team 1", outcome="applied"), size=2)

    expected = [i for i in range(30) if i % 3 == 1 and i % 4 != 0][::-1]
    assert [e.new["member"] for e in walked if e.new] == [f"u{i}@example.com" for i in expected]


def test_newer_pages_lead_back_to_the_newest_page_with_what_was_written_since(store: Store) -> None:
    _users(store, "okta", [f"u{i}@example.com" for i in range(10)], T0)
    first = event_page(store, EventFilter(), limit=4)
    second = event_page(store, EventFilter(), limit=4, older_than=first.older)
    third = event_page(store, EventFilter(), limit=4, older_than=second.older)
    _users(store, "okta", ["newest@example.com"], T0 + timedelta(hours=1))

    back = event_page(store, EventFilter(), limit=4, newer_than=third.newer)
    above = event_page(store, EventFilter(), limit=4, newer_than=back.newer)
    top = event_page(store, EventFilter(), limit=4, newer_than=above.newer)

    assert [e.id for e in back.events] == [e.id for e in second.events]
    assert back.older == second.older
    assert [e.id for e in above.events] == [e.id for e in first.events] and above.newer is not None
    assert top.events[0].target == "newest@example.com" and top.newer is None and len(top.events) == 4
    assert first.newer is None and third.older is None and len(third.events) == 2


def test_a_cursor_that_was_not_made_by_the_log_is_refused_with_a_message(store: Store) -> None:
    for bad in ("nonsense", "", "bm90IGEgY3Vyc29y", "MjAyNi0xMS0yM1QwNjowMDowMHw"):
        with pytest.raises(BadFilter, match="page link"):
            event_page(store, EventFilter(), older_than=bad)


@pytest.mark.parametrize("copies", [1, 6], ids=["few-rows", "past-copy-threshold"])
def test_events_written_in_one_batch_are_stored_exactly_as_row_by_row_events(store: Store, copies: int) -> None:
    """`insert_operation_events` (the apply's writer, which keys and serialises a shared
    value tuple once) stores the very columns `operation_event` rows store, rejections first;
    in a few rows, and in as many as PostgreSQL writes by COPY (`store.bulk.COPY_FROM_ROWS`)."""
    from datetime import date

    from sqlalchemy import select

    from store.models import sync_events
    from store.events import insert_operation_events

    shared = (("member", "Ana@Example.com"),)
    ops = [
        create_user("x-1", "Bo@Example.com"),
        add_member("Staff", "Ana@Example.com"),
        Operation(Action.ADD_MEMBER, "Staff", group=Ref(local_id=1), user=Ref(local_id=1), values=shared),
        Operation(Action.ADD_MEMBER, "Other Group", group=Ref(local_id=2), user=Ref(local_id=1), values=shared),
        Operation(Action.REMOVE_MEMBER, "Staff", group=Ref(local_id=1), user=Ref(local_id=1), old=shared),
        Operation(Action.REMOVE_MEMBER, "Staff", group=Ref(local_id=1), user=Ref(local_id=1),
                  values=(("member", " "),), old=(("member", "Cy@example.com"),)),
        Operation(Action.ADD_MEMBER, "Staff", group=Ref(local_id=1), user=Ref(local_id=1)),
        Operation(Action.RENAME_GROUP, "Staff", group=Ref(local_id=1), values=(("name", "Crew"),),
                  old=(("name", "Staff"),), reason="renamed"),
        Operation(Action.UPDATE_USER, "Dee@example.com", user=Ref(local_id=3),
                  values=(("aliases", frozenset({"b", "a"})), ("born", date(2000, 1, 2)), ("n", 1.5))),
        deactivate("Ed@example.com", "left-scope"),
        Operation(Action.CREATE_INVITE, "Fay@example.com", values=(("email", "Fay@example.com"),)),
    ]
    outcomes = [(Outcome.APPLIED, None)] * (len(ops) - 2) + [(Outcome.FAILED, "conflict: x"), (Outcome.NOOP, None)]
    ops, outcomes = ops * copies, outcomes * copies
    rejection = Rejection(Kind.MEMBERSHIP, "Staff: Gus@example.com", "bad-email", external_id="g-1")
    one_by_one, batch = _run(store, "hr", T0), _run(store, "hr", T0)
    with store.session() as session:
        rows = [rejection_event(one_by_one, 1, rejection, at=T0)]
        rows += [operation_event(one_by_one, seq, op, outcome, reason=reason, detail="PATCH /x", at=T0)
                 for seq, op, (outcome, reason) in zip(range(2, 2 + len(ops)), ops, outcomes, strict=True)]
        insert_events(session, rows)
        insert_operation_events(session.connection(), batch, enumerate(ops, 2), outcomes, detail="PATCH /x", at=T0,
                                before=[rejection_event(batch, 1, rejection, at=T0)])
    columns = [c for c in sync_events.c if c.name not in ("id", "run_id")]
    with store.engine.connect() as conn:
        # The stored text itself: JSON read back as text, not as values that compare equal.
        raw = [c.cast(String) if c.name in ("old", "new") else c for c in columns]
        stored = {run: conn.execute(select(*raw).where(sync_events.c.run_id == run).order_by(sync_events.c.id)).all()
                  for run in (one_by_one, batch)}
    assert len(stored[batch]) == len(ops) + 1
    assert copies == 1 or len(ops) >= COPY_FROM_ROWS
    assert stored[batch] == stored[one_by_one]
