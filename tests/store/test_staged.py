"""Staged plans in the store: kept exactly, one open per directory, decided once."""

from __future__ import annotations

from typing import Any

from reconcile.model import Action, Operation, Ref
from store import (
    StagedStatus,
    Store,
    decide,
    get_staged,
    has_open_plan,
    list_events,
    open_plans,
    stage_plan,
    staged_operations,
    start_run,
)
from store.events import insert_events, operation_event
from store.models import Outcome
from store.staged import (
    NO_LONGER_CONFIRMED,
    live_events,
    operation_from_json,
    operation_json,
    withdrawal_detail,
    withdrawals,
)
from tests.store.builders import (
    add_member,
    create_group,
    create_invite,
    create_user,
    deactivate,
    link_user,
    plan,
    rename_group,
    revoke_invite,
    unlink_group,
    update_user,
)

# As the planner writes one: the group's name as target, the member's email in `old`.
REMOVAL = Operation(Action.REMOVE_MEMBER, "Staff", group=Ref(local_id=5), user=Ref(local_id=7),
                    old=(("member", "gus@x.com"),))
EVERY_KIND = (
    create_user("u1", "ann@x.com"),
    create_group("g1", "Staff"),
    update_user(3, old={"display_name": "Old"}, display_name="New"),
    link_user(4, "u4"),
    rename_group(5, "Ops"),
    unlink_group(6),
    deactivate(7),
    add_member("g1", "u1"),
    REMOVAL,
    create_invite("new@x.com"),
    revoke_invite(9),
)


def _stage(store: Store, directory: str = "okta") -> int:
    with store.session() as session:
        run_id = start_run(session, directory=directory, trigger="cli", mode="full")
        stage_plan(session, run_id=run_id, directory=directory, plan=plan(*EVERY_KIND, directory=directory),
                   reason="1 deactivations exceed max_deactivations = 0")
    return run_id


def test_every_kind_of_operation_survives_serialising() -> None:
    assert tuple(operation_from_json(operation_json(op)) for op in EVERY_KIND) == EVERY_KIND


def test_a_staged_plan_keeps_its_operations_and_lists_deactivations_and_removals(store: Store) -> None:
    run_id = _stage(store)

    with store.session() as session:
        row = get_staged(session, run_id)
        assert row is not None
        assert staged_operations(row) == EVERY_KIND
        assert (row.status, row.safety_limit) == ("open", "max_deactivations")
        assert row.deactivations == [deactivate(7).target]
        assert row.removals == [{"group": "Staff", "email": "gus@x.com"}]
        assert [e.outcome for e in list_events(session, run_id)] == ["staged"] * len(EVERY_KIND)


def test_staging_a_newer_plan_supersedes_the_older_of_the_same_directory_only(store: Store) -> None:
    first, other = _stage(store, "okta"), _stage(store, "entra")

    second = _stage(store, "okta")

    with store.session() as session:
        assert [p.run_id for p in open_plans(session)] == [other, second]
        old = get_staged(session, first)
        assert old is not None and (old.status, old.decided_run_id) == ("superseded", second)


def test_a_plan_is_decided_once(store: Store) -> None:
    run_id = _stage(store)

    with store.session() as session:
        assert decide(session, run_id, StagedStatus.REJECTED, by="bob")
        assert not decide(session, run_id, StagedStatus.APPROVED, by="alice")
        row = get_staged(session, run_id)
        assert row is not None and (row.status, row.decided_by) == ("rejected", "bob")
        assert not has_open_plan(session, "okta")



# --- withdrawals: which held event each takes back ----------------------------------------------


def _held_twice_alike(store: Store, withdrawal: str) -> list[Any]:
    """A run holding two deactivations that read alike (one email, two requests), then a
    withdrawal with detail `withdrawal`: its events, in order."""
    op = Operation(Action.DEACTIVATE_USER, "ann@x.com", user=Ref(local_id=1), values=(("active", False),),
                   old=(("active", True),))
    with store.session() as session:
        run_id = start_run(session, directory="okta", trigger="scim", mode="push")
        held = [operation_event(run_id, seq, op, Outcome.STAGED, detail=f"PATCH /Users/{scim_id}")
                for seq, scim_id in ((1, "a1"), (2, "b1"))]
        taken_back = {**held[0], "seq": 3, "outcome": Outcome.REJECTED.value, "reason": NO_LONGER_CONFIRMED,
                      "detail": withdrawal}
        insert_events(session, [*held, taken_back])
        return list_events(session, run_id)


def _seqs(events: list[Any]) -> list[int]:
    return [e.seq for e in events]


def test_a_withdrawal_takes_back_the_held_event_it_names(store: Store) -> None:
    events = sorted(_held_twice_alike(store, withdrawal_detail(2, "PATCH /Users/b1 says the user is active")),
                    key=lambda e: e.seq)

    assert _seqs(live_events(events)) == [1]
    assert [(w.seq, s.seq) for w, s in withdrawals(events)] == [(3, 2)]


def test_a_withdrawal_whose_event_is_not_read_takes_back_nothing_else(store: Store) -> None:
    events = sorted(_held_twice_alike(store, withdrawal_detail(2, "PATCH /Users/b1 says the user is active")),
                    key=lambda e: e.seq)

    assert _seqs(live_events([e for e in events if e.seq != 2])) == [1]


def test_a_withdrawal_that_names_no_event_takes_back_the_earliest_alike(store: Store) -> None:
    events = sorted(_held_twice_alike(store, "withdrawn: PATCH /Users/a1 says the user is active"),
                    key=lambda e: e.seq)

    assert _seqs(live_events(events)) == [2]
