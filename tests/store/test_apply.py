"""`reconcile.apply.apply`: each action, idempotence, references, outcomes."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest

from reconcile.apply import apply
from reconcile.model import Action, Operation, Plan
from store.models import Outcome
from store import Store, export_state, list_events, load_local_state, start_run
from tests.store.builders import (
    activate,
    add_member,
    create_group,
    create_invite,
    create_user,
    deactivate,
    link_group,
    link_user,
    plan,
    remove_member,
    rename_group,
    revoke_invite,
    unlink_group,
    unlink_user,
    update_user,
)


def exported(store: Store) -> dict[str, Any]:
    with store.session() as session:
        return export_state(session)


def outcomes(store: Store, p: Plan) -> list[str]:
    result = apply(store, p, run_id=None)
    return [f"{a}:{o}" for a, per in result.actions.items() for o, n in per.items() for _ in range(n)]


def seed(store: Store) -> None:
    """Local users #1 ann, #2 bob; local group #1 Eng with ann; an open invite #1."""
    apply(
        store,
        plan(
            create_user(None, "ann@example.com"),
            create_user(None, "bob@example.com"),
            create_group(None, "Eng"),
            add_member("Eng", "ann@example.com"),
            create_invite("new@example.com"),
            directory=None,
        ),
        run_id=None,
    )


ACTIONS: dict[Action, Callable[[], Operation]] = {
    Action.CREATE_USER: lambda: create_user("u9", "cy@example.com"),
    Action.UPDATE_USER: lambda: update_user(1, email="Ann.New@example.com", display_name="Ann N"),
    Action.LINK_USER: lambda: link_user(2, "u2"),
    Action.UNLINK_USER: lambda: unlink_user(1),
    Action.ACTIVATE_USER: lambda: activate(1),
    Action.DEACTIVATE_USER: lambda: deactivate(1),
    Action.CREATE_GROUP: lambda: create_group("g9", "Ops"),
    Action.RENAME_GROUP: lambda: rename_group(1, "Engineering"),
    Action.LINK_GROUP: lambda: link_group(1, "g1"),
    Action.UNLINK_GROUP: lambda: unlink_group(1),
    Action.ADD_MEMBER: lambda: add_member(1, 2),
    Action.REMOVE_MEMBER: lambda: remove_member(1, 1),
    Action.CREATE_INVITE: lambda: create_invite("other@example.com"),
    Action.REVOKE_INVITE: lambda: revoke_invite(1),
}
# Actions whose seeded starting point already satisfies them: the first apply is a noop.
ALREADY_TRUE = {Action.ACTIVATE_USER, Action.UNLINK_USER, Action.UNLINK_GROUP}


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_each_action_applies_once_then_is_a_noop(store: Store, action: Action) -> None:
    seed(store)
    if action in ALREADY_TRUE:  # first make the action meaningful
        apply(store, plan(deactivate(1), link_user(1, "u1"), link_group(1, "g1")), run_id=None)
    p = plan(ACTIONS[action]())
    before = exported(store)

    first = outcomes(store, p)
    after_first = exported(store)
    second = outcomes(store, p)

    assert first == [f"{action.value}:applied"]
    assert after_first != before
    assert second == [f"{action.value}:noop"]
    assert exported(store) == after_first


def test_each_action_changes_what_it_says(store: Store) -> None:
    seed(store)

    apply(
        store,
        plan(
            update_user(1, email=" Ann.New@Example.com ", given_name="Annie"),
            link_user(2, "u2"),
            deactivate(2),
            rename_group(1, "Engineering"),
            link_group(1, "g1"),
            add_member(1, 2),
            remove_member(1, 1),
            revoke_invite(1),
            create_invite("later@example.com"),
        ),
        run_id=None,
    )
    state = exported(store)

    assert state["users"] == [
        {"email": "Ann.New@Example.com", "display_name": "Given Family", "given_name": "Annie",
         "family_name": "Family", "active": True, "managed_by": None, "external_id": None},
        {"email": "bob@example.com", "display_name": "Given Family", "given_name": "Given",
         "family_name": "Family", "active": False, "managed_by": "okta", "external_id": "u2"},
    ]
    assert state["groups"] == [
        {"name": "Engineering", "managed_by": "okta", "external_id": "g1", "members": ["bob@example.com"]}
    ]
    assert state["invites"] == [
        {"email": "later@example.com", "status": "open"},
        {"email": "new@example.com", "status": "revoked"},
    ]


def test_keys_name_rows_created_earlier_in_the_same_plan(store: Store) -> None:
    p = plan(
        create_user("u1", "ann@example.com"),
        create_group("g1", "Eng"),
        add_member("g1", "u1"),
    )

    apply(store, p, run_id=None)

    assert exported(store)["groups"][0]["members"] == ["ann@example.com"]


def test_users_and_groups_have_separate_keys(store: Store) -> None:
    p = plan(create_user("x1", "ann@example.com"), create_group("x1", "Eng"), add_member("x1", "x1"))

    apply(store, p, run_id=None)

    assert exported(store)["groups"][0]["members"] == ["ann@example.com"]


def test_a_key_from_an_interrupted_earlier_apply_is_found_in_the_store(store: Store) -> None:
    apply(store, plan(create_user("u1", "ann@example.com"), create_group("g1", "Eng")), run_id=None)

    result = apply(store, plan(add_member("g1", "u1")), run_id=None)

    assert result.applied == 1
    assert exported(store)["groups"][0]["members"] == ["ann@example.com"]


def test_applying_a_whole_plan_twice_gives_noops_and_the_same_store(store: Store) -> None:
    seed(store)
    p = plan(
        update_user(1, email="ann@corp.example.com"),
        link_user(2, "u2"),
        create_user("u3", "cy@example.com"),
        create_group("g2", "Ops"),
        add_member("g2", "u3"),
        add_member("g2", 2),
        remove_member(1, 1),
        deactivate(1),
    )
    apply(store, p, run_id=None)
    once = exported(store)

    again = apply(store, p, run_id=None)

    assert again.outcomes == {"noop": 8}
    assert exported(store) == once


def test_email_uniqueness_ignores_case(store: Store) -> None:
    apply(store, plan(create_user("u1", "Ann@Example.com")), run_id=None)

    result = apply(store, plan(create_user("u2", "ann@example.COM")), run_id=None)

    # The email was taken since the plan was made: a conflict, not a unique-index failure.
    assert result.conflicts == 1
    assert result.failures[0].reason == "changed-since-planned"
    assert [u["email"] for u in exported(store)["users"]] == ["Ann@Example.com"]


def test_local_create_of_an_existing_email_in_another_case_is_a_noop(store: Store) -> None:
    apply(store, plan(create_user(None, "ann@example.com"), directory=None), run_id=None)

    result = apply(store, plan(create_user(None, "ANN@example.com"), directory=None), run_id=None)

    assert result.noop == 1


def test_email_permutation_applies(store: Store) -> None:
    apply(
        store,
        plan(create_user("u1", "a@x.com"), create_user("u2", "b@x.com"), create_user("u3", "c@x.com")),
        run_id=None,
    )
    # 1 takes 2's email, 2 takes 3's, 3 takes 1's; a new user takes nothing anyone keeps.
    p = plan(
        update_user(1, email="b@x.com"),
        create_user("u4", "d@x.com"),
        update_user(2, email="C@x.com"),
        update_user(3, email="a@x.com"),
    )

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 4}
    assert {(u["external_id"], u["email"]) for u in exported(store)["users"]} == {
        ("u1", "b@x.com"), ("u2", "C@x.com"), ("u3", "a@x.com"), ("u4", "d@x.com"),
    }


def test_a_new_user_may_take_an_email_given_up_in_the_same_plan(store: Store) -> None:
    apply(store, plan(create_user("u1", "a@x.com")), run_id=None)
    # The new user comes first in the plan; the email it takes is freed later in it.
    p = plan(create_user("u2", "a@x.com"), update_user(1, email="a.old@x.com"))

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 2}


def test_group_names_can_swap(store: Store) -> None:
    apply(store, plan(create_group("g1", "Red"), create_group("g2", "Blue")), run_id=None)

    result = apply(store, plan(rename_group(1, "blue"), rename_group(2, "red")), run_id=None)

    assert result.outcomes == {"applied": 2}
    assert [(g["external_id"], g["name"]) for g in exported(store)["groups"]] == [("g1", "blue"), ("g2", "red")]


def test_one_conflicting_operation_fails_while_the_others_apply(store: Store) -> None:
    seed(store)
    p = plan(
        create_user("u1", "cy@example.com"),
        create_user("u2", "ANN@example.com"),  # taken by local user ann
        create_user("u3", "dee@example.com"),
        add_member(1, "u3"),
        add_member(1, "u2"),  # the user that could not be created
    )

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 3, "conflict": 1, "failed": 1}
    assert [(f.seq, f.action, f.outcome) for f in result.failures] == [
        (2, Action.CREATE_USER, Outcome.CONFLICT), (5, Action.ADD_MEMBER, Outcome.FAILED)]
    assert "unresolved user new:u2" in result.failures[1].reason
    emails = [u["email"] for u in exported(store)["users"]]
    assert emails == ["ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com"]


def test_a_failing_email_change_does_not_block_a_swap(store: Store) -> None:
    apply(
        store,
        plan(create_user("u1", "a@x.com"), create_user("u2", "b@x.com"), create_user("u3", "c@x.com")),
        run_id=None,
    )
    # 1 and 2 swap; 3 wants an email 1 keeps... no: 1 gives a@x.com up; 3 wants b@x.com,
    # which 1 takes: a true conflict, so 3 alone fails.
    p = plan(update_user(1, email="b@x.com"), update_user(2, email="a@x.com"), update_user(3, email="B@x.com"))

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 2, "failed": 1}
    assert result.failures[0].seq == 3
    assert {(u["external_id"], u["email"]) for u in exported(store)["users"]} == {
        ("u1", "b@x.com"), ("u2", "a@x.com"), ("u3", "c@x.com"),
    }


def test_operation_on_a_missing_row_fails(store: Store) -> None:
    result = apply(store, plan(deactivate(42), revoke_invite(7)), run_id=None)

    assert result.outcomes == {"failed": 2}
    assert result.failures[0].reason == "user #42 does not exist"
    assert result.failures[1].reason == "invite #7 does not exist"


def test_every_operation_and_rejection_gets_an_event_with_old_and_new(store: Store) -> None:
    seed(store)
    from reconcile.model import Kind, Rejection

    rejection = Rejection(Kind.GROUP, "A" * 30, "name-too-long", "30 characters", external_id="g7")
    p = Plan(
        directory="okta",
        operations=(update_user(1, old={"given_name": "Given"}, given_name="Annie"), deactivate(1)),
        rejections=(rejection,),
    )
    with store.session() as session:
        run_id = start_run(session, directory="okta", trigger="cli", mode="full")

    apply(store, p, run_id=run_id)
    with store.session() as session:
        events = [(e.seq, e.action, e.kind, e.target, e.outcome, e.reason, e.old, e.new)
                  for e in list_events(session, run_id)]

    assert events == [
        (1, "reject", "group", "A" * 30, "rejected", "name-too-long", None, {"external_id": "g7"}),
        (2, "update-user", "user", "1", "applied", None, {"given_name": "Given"}, {"given_name": "Annie"}),
        (3, "deactivate-user", "user", "1", "applied", None, {"active": True}, {"active": False}),
    ]


def test_progress_is_reported_after_each_chunk(store: Store) -> None:
    seen: list[tuple[int, int]] = []
    p = plan(*(create_user(f"u{n}", f"u{n}@x.com") for n in range(5)))

    apply(store, p, run_id=None, progress=lambda done, total: seen.append((done, total)), chunk_size=2)

    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_a_plan_of_many_chunks_leaves_nothing_frozen_from_collection(store: Store) -> None:
    p = plan(*(create_user(f"u{n}", f"u{n}@x.com") for n in range(5)))
    frozen_while_applying: list[int] = []

    result = apply(store, p, run_id=None, chunk_size=2,
                   progress=lambda done, total: frozen_while_applying.append(gc.get_freeze_count()))

    assert result.applied == 5
    assert all(n > 0 for n in frozen_while_applying) and gc.get_freeze_count() == 0


def test_a_plan_of_many_chunks_writes_with_a_larger_sqlite_page_cache_and_gives_it_back(store: Store) -> None:
    if not store.is_sqlite:
        pytest.skip("SQLite's page cache")
    sizes: list[int] = []

    def cache_size(done: int, total: int) -> None:
        with store.engine.connect() as conn:  # the connection the chunk used, back in the pool
            sizes.append(conn.exec_driver_sql("PRAGMA cache_size").scalar())

    def written_with(p: Plan, **options: Any) -> list[str]:
        from sqlalchemy import event

        pragmas: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith("PRAGMA cache_size ="):
                pragmas.append(statement)

        event.listen(store.engine, "before_cursor_execute", seen)
        try:
            apply(store, p, run_id=None, progress=cache_size, **options)
        finally:
            event.remove(store.engine, "before_cursor_execute", seen)
        return pragmas

    assert written_with(plan(create_user("one", "one@x.com"))) == []
    assert "PRAGMA cache_size = -16384" in written_with(
        plan(*(create_user(f"u{n}", f"u{n}@x.com") for n in range(5))), chunk_size=2)
    assert set(sizes) == {-2000}


def test_chunks_are_committed_one_by_one(store: Store) -> None:
    p = plan(*(create_user(f"u{n}", f"u{n}@x.com") for n in range(5)))
    committed: list[int] = []

    def count_committed(done: int, total: int) -> None:
        # Another session sees each chunk as soon as it is reported.
        with store.session() as session:
            committed.append(len(load_local_state(session).users))

    apply(store, p, run_id=None, progress=count_committed, chunk_size=2)

    assert committed == [2, 4, 5]


def test_an_interrupted_apply_leaves_whole_chunks_and_a_rerun_completes_it(store: Store) -> None:
    p = plan(*(create_user(f"u{n}", f"u{n}@x.com") for n in range(3)), *(add_member("g", f"u{n}") for n in range(3)),
             create_group("g", "Eng"))
    p = plan(create_group("g", "Eng"), *p.operations[:-1])

    class Killed(Exception):
        pass

    def die(done: int, total: int) -> None:
        if done >= 4:
            raise Killed

    with pytest.raises(Killed):
        apply(store, p, run_id=None, progress=die, chunk_size=2)
    partial = exported(store)
    result = apply(store, p, run_id=None)

    assert len(partial["users"]) == 3 and partial["groups"][0]["members"] == []
    assert result.outcomes == {"noop": 4, "applied": 3}
    assert len(exported(store)["groups"][0]["members"]) == 3


def test_events_of_an_unknown_run_are_refused_and_nothing_is_written(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        apply(store, plan(create_user("u1", "ann@x.com")), run_id=999)

    assert exported(store)["users"] == []


def test_swaps_apply_when_user_and_group_changes_are_interleaved(store: Store) -> None:
    apply(store, plan(create_user("u1", "a@x.com"), create_user("u2", "b@x.com"),
                      create_group("g1", "Red"), create_group("g2", "Blue")), run_id=None)
    p = plan(update_user(1, email="b@x.com"), rename_group(1, "Blue"), update_user(2, email="a@x.com"),
             rename_group(2, "Red"))

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 4}


def test_lookups_of_many_rows_are_split_into_several_statements(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconcile.apply.lookup

    monkeypatch.setattr(reconcile.apply.lookup, "_IN_SLICE", 2)
    apply(store, plan(*(create_user(f"u{n}", f"{n}@x.com") for n in range(5))), run_id=None)
    # Everyone takes the next one's email: a cycle of five, looked up two at a time.
    p = plan(*(update_user(n + 1, email=f"{(n + 1) % 5}@x.com") for n in range(5)))

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 5}
    assert sorted(u["external_id"] for u in exported(store)["users"]) == [f"u{n}" for n in range(5)]


def test_a_failing_move_does_not_block_user_and_group_swaps(store: Store) -> None:
    apply(store, plan(create_user("u1", "a@x.com"), create_user("u2", "b@x.com"), create_user("u3", "c@x.com"),
                      create_group("g1", "Red"), create_group("g2", "Blue")), run_id=None)
    p = plan(
        update_user(1, email="b@x.com"),
        rename_group(1, "Blue"),
        update_user(3, email="A@x.com"),  # wants the email 2 takes: a true conflict
        update_user(2, email="a@x.com"),
        rename_group(2, "Red"),
    )

    result = apply(store, p, run_id=None)

    assert result.outcomes == {"applied": 4, "failed": 1}
    assert [f.seq for f in result.failures] == [3]
    assert [g["name"] for g in exported(store)["groups"]] == ["Blue", "Red"]


def test_a_local_key_in_a_directory_plan_is_found_by_name_on_a_rerun(store: Store) -> None:
    from reconcile.model import Ref

    admins = Operation(Action.CREATE_GROUP, "Administrators", group=Ref(key="local:administrators"),
                       values=(("external_id", None), ("managed_by", None), ("name", "Administrators"),
                               ("reserved", True)))
    apply(store, plan(create_user("u1", "ann@x.com"), admins), run_id=None)

    result = apply(store, plan(add_member("local:administrators", "u1")), run_id=None)

    assert result.applied == 1
    assert exported(store)["groups"][0]["members"] == ["ann@x.com"]
