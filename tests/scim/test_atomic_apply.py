"""`apply(atomic=True)`: one SCIM request's plan is written whole or not at all."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from reconcile.admin import add_group, add_member, add_user
from reconcile.apply import apply
from reconcile.model import Action, Operation, Plan, Ref, RuleSettings
from store import Store, export_state, list_events, load_local_state

RULES = RuleSettings()


def _admin(store: Store, make) -> None:
    with store.session() as session:
        local = load_local_state(session)
    apply(store, make(local), run_id=None)


def _setup(store: Store) -> tuple[int, int, int]:
    _admin(store, lambda local: add_user(local, "root@example.com", None, RULES))
    _admin(store, lambda local: add_member(local, "Administrators", "root@example.com", RULES))
    _admin(store, lambda local: add_group(local, "Sales", RULES))
    with store.session() as session:
        local = load_local_state(session)
    groups = {g.name: g.id for g in local.groups}
    return groups["Sales"], groups["Administrators"], local.users[0].id


def _rename_and_empty_admins(sales: int, admins: int, root: int) -> Plan:
    return Plan(None, (
        Operation(Action.RENAME_GROUP, "Revenue", group=Ref(local_id=sales), values=(("name", "Revenue"),),
                  old=(("name", "Sales"),)),
        Operation(Action.REMOVE_MEMBER, "Administrators", group=Ref(local_id=admins), user=Ref(local_id=root),
                  old=(("member", "root@example.com"),)),
    ))


def _names(store: Store) -> list[str]:
    with store.session() as session:
        return sorted(g["name"] for g in export_state(session)["groups"])


def test_a_refused_operation_takes_the_whole_plan_with_it(store: Store) -> None:
    sales, admins, root = _setup(store)

    result = apply(store, _rename_and_empty_admins(sales, admins, root), run_id=None, atomic=True,
                   detail="PATCH /Groups/x")

    assert _names(store) == ["Administrators", "Sales"]
    assert [(f.action.value, f.reason) for f in result.failures] == [
        ("rename-group", "request-refused"), ("remove-member", "admin-group-would-be-empty")]
    assert result.applied == 0 and result.conflicts == 2
    with store.session() as session:
        events = [(e.action, e.outcome, e.reason, e.detail) for e in list_events(session, None)][-2:]
    assert events == [("rename-group", "conflict", "request-refused", "PATCH /Groups/x"),
                      ("remove-member", "conflict", "admin-group-would-be-empty", "PATCH /Groups/x")]


def test_without_atomic_the_rename_is_written_in_its_own_transaction(store: Store) -> None:
    sales, admins, root = _setup(store)

    apply(store, _rename_and_empty_admins(sales, admins, root), run_id=None)

    assert _names(store) == ["Administrators", "Revenue"]


def _rename_and_add(sales: int, root: int) -> Plan:
    return Plan(None, (
        Operation(Action.RENAME_GROUP, "Revenue", group=Ref(local_id=sales), values=(("name", "Revenue"),),
                  old=(("name", "Sales"),)),
        Operation(Action.ADD_MEMBER, "Revenue", group=Ref(local_id=sales), user=Ref(local_id=root),
                  values=(("member", "root@example.com"),)),
    ))


def test_an_atomic_plan_that_holds_is_written_whole(store: Store) -> None:
    sales, _, root = _setup(store)

    result = apply(store, _rename_and_add(sales, root), run_id=None, atomic=True)

    assert result.applied == 2 and not result.failures
    with store.session() as session:
        groups = {g["name"]: g["members"] for g in export_state(session)["groups"]}
    assert groups["Revenue"] == ["root@example.com"]


# What PostgreSQL raises in the transaction it picks to give way in a deadlock.
DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"


def test_an_atomic_plan_the_database_made_give_way_in_a_deadlock_runs_again(store: Store) -> None:
    """A request's transaction chosen as a deadlock's victim (two directories linking the
    same local groups in opposite orders) is rolled back whole; it runs again, as a
    cycle's chunk does, instead of failing the request."""
    if not store.engine.url.drivername.startswith("postgresql"):
        pytest.skip("SQLite write transactions take the write lock first: they never deadlock")
    sales, _, root = _setup(store)
    victims = []

    def first_rename_deadlocks(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                               executemany: bool) -> tuple[str, Any]:
        if statement.startswith("UPDATE groups") and not victims:
            victims.append(statement)
            return DEADLOCK, ()
        return statement, parameters

    event.listen(store.engine, "before_cursor_execute", first_rename_deadlocks, retval=True)
    try:
        result = apply(store, _rename_and_add(sales, root), run_id=None, atomic=True)
    finally:
        event.remove(store.engine, "before_cursor_execute", first_rename_deadlocks)

    assert victims and result.applied == 2 and not result.failures
    with store.session() as session:
        groups = {g["name"]: g["members"] for g in export_state(session)["groups"]}
        actions = [e.action for e in list_events(session, None)][-2:]
    assert groups["Revenue"] == ["root@example.com"]
    assert actions == ["rename-group", "add-member"]  # recorded once, by the try that committed
