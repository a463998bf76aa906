"""Fixed interleavings of two writers on PostgreSQL, where transactions run side by side.

The random rounds of test_concurrent_writers meet these only by chance; here the first
writer is held inside its transaction (just before a chosen statement) until the second
one is waiting on a row lock, so each interleaving happens on every run. On SQLite every
write transaction takes the database write lock first, so these interleavings cannot
happen there.

Two local removals of the last two administrators show R4 held at write time under the
admin group's lock; two links of one user, a deactivation racing a link and a
deactivation racing a link of the alias show that a writer checks rows under their lock
and that every writer takes the admin group's lock first (no deadlock). While another
transaction holds that lock, a cycle that writes only ordinary groups (or deactivates a
user outside the admin group) goes on without waiting for it, and every writer of the
admin group still waits (DESIGN §2a); a deactivation that took no lock and meets a user
who joined the group meanwhile runs again under it.

The writers are real plans: a directory's plan made by `plan()` from a snapshot, and a
local admin action made by `reconcile.admin`, applied by `apply` as a cycle and the CLI do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, make_url, select, text
from sqlalchemy.exc import OperationalError

from reconcile import admin
from reconcile.apply import ApplyResult, apply
from reconcile.model import ExternalGroup, ExternalUser, Plan, RuleSettings, Snapshot
from reconcile.plan import plan
from store import Store, load_local_state, open_store
from store.models import users
from tests.concurrency.invariants import read_snapshot

RULES = RuleSettings()
LOCAL = "lee@example.com"
ROOT = "root@example.com"


@pytest.fixture
def pg(store_url: str) -> Iterator[str]:
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite write transactions take the write lock first: they never interleave")
    setup = open_store(store_url, check_schema=False)
    setup.upgrade()
    for build in (lambda s: admin.add_user(s, ROOT, "Root", RULES), lambda s: admin.add_user(s, LOCAL, "Lee", RULES),
                  lambda s: admin.add_member(s, "Administrators", ROOT, RULES)):
        apply(setup, build(_local(setup)), run_id=None)
    setup.dispose()
    yield store_url


def _local(store: Store) -> Any:
    with store.session() as session:
        return load_local_state(session)


def _directory_plan(store: Store, directory: str, *, alias: bool) -> Plan:
    """`directory` lists the local user (and, with `alias`, root too and the admin alias
    with both): its plan links them, and the alias links `Administrators`."""
    people = [ExternalUser(f"{directory}-lee", LOCAL, display_name="Lee")]
    groups: list[ExternalGroup] = []
    if alias:
        people.append(ExternalUser(f"{directory}-root", ROOT, display_name="Root"))
        groups.append(ExternalGroup(f"{directory}-admins", "Split_Administrators",
                                    frozenset({f"{directory}-lee", f"{directory}-root"})))
    return plan(Snapshot(tuple(people), tuple(groups), (), None), _local(store), RULES, directory=directory)


# Where the first writer is held: before its transaction commits, once it has written
# something (its events go by COPY on PostgreSQL, which statement hooks do not see).
COMMIT = "COMMIT"


@contextmanager
def held_before(store: Store, statement: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """While active, the first statement on `store` that starts with `statement` (or, for
    COMMIT, the first commit after a write) waits: it sets the first event
    when it gets there and goes on once the second is set."""
    arrived, go = threading.Event(), threading.Event()
    wrote = threading.Event()

    def hold() -> None:
        if not arrived.is_set():
            arrived.set()
            go.wait(30)

    def before_statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.startswith(("UPDATE", "DELETE", "INSERT")):
            wrote.set()
        if statement != COMMIT and sql.startswith(statement):
            hold()

    def before_commit(conn: Any) -> None:
        if statement == COMMIT and wrote.is_set():
            hold()

    event.listen(store.engine, "before_cursor_execute", before_statement)
    event.listen(store.engine, "commit", before_commit)
    try:
        yield arrived, go
    finally:
        go.set()
        event.remove(store.engine, "before_cursor_execute", before_statement)
        event.remove(store.engine, "commit", before_commit)


def _wait_until_a_writer_waits_on_a_lock(store: Store) -> None:
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + 30
    with store.engine.connect() as conn:
        while conn.execute(query).scalar() == 0:
            assert time.monotonic() < deadline, "the second writer never waited on a lock"
            time.sleep(0.01)
            conn.rollback()


def _race(first: Store, first_plan: Plan, statement: str, second: Store, second_plan: Plan) -> list[Any]:
    """`first_plan` held before `statement`; meanwhile `second_plan` starts and waits on
    a lock; then both go on. Each result is an ApplyResult or the exception raised."""
    results: list[Any] = [None, None]

    def run(n: int, store: Store, the_plan: Plan) -> None:
        try:
            results[n] = apply(store, the_plan, run_id=None, directory=the_plan.directory)
        except Exception as exc:  # what the test reports
            results[n] = exc

    with held_before(first, statement) as (arrived, go):
        one = threading.Thread(target=run, args=(0, first, first_plan))
        one.start()
        assert arrived.wait(30), f"the first writer never reached {statement!r}"
        two = threading.Thread(target=run, args=(1, second, second_plan))
        two.start()
        _wait_until_a_writer_waits_on_a_lock(first)
        go.set()
        one.join(60)
        two.join(60)
    return results


@contextmanager
def stores(url: str, n: int) -> Iterator[list[Store]]:
    opened = [open_store(url) for _ in range(n)]
    try:
        yield opened
    finally:
        for store in opened:
            store.dispose()


def _binding(store: Store, email: str) -> tuple[Any, ...]:
    with store.engine.connect() as conn:
        row = conn.execute(select(users.c.managed_by, users.c.active).where(users.c.email_key == email)).one()
    return tuple(row)


def test_two_directories_link_one_local_user(pg: str) -> None:
    with stores(pg, 3) as (east, west, check):
        east_plan = _directory_plan(east, "east", alias=False)
        west_plan = _directory_plan(west, "west", alias=False)
        results = _race(east, east_plan, COMMIT, west, west_plan)
        assert all(isinstance(r, ApplyResult) for r in results), results
        # East committed first: the user is east's, west's link is refused at write time.
        assert _binding(check, LOCAL)[0] == "east"
        assert [f.reason for f in results[1].failures] == ["owned-by-other-directory"]


def test_a_local_deactivation_racing_a_link(pg: str) -> None:
    with stores(pg, 3) as (east, local, check):
        link = _directory_plan(east, "east", alias=False)
        deactivate = admin.deactivate_user(_local(local), LOCAL, RULES)
        results = _race(east, link, COMMIT, local, deactivate)
        assert all(isinstance(r, ApplyResult) for r in results), results
        assert _binding(check, LOCAL) == ("east", True)
        assert [f.reason for f in results[1].failures] == ["managed"]


def test_a_local_deactivation_racing_an_alias_link_does_not_deadlock(pg: str) -> None:
    with stores(pg, 3) as (east, local, check):
        link = _directory_plan(east, "east", alias=True)
        deactivate = admin.deactivate_user(_local(local), LOCAL, RULES)
        results = _race(east, link, "UPDATE groups", local, deactivate)
        assert all(isinstance(r, ApplyResult) for r in results), results


def test_two_local_removals_of_the_last_two_administrators(pg: str) -> None:
    """Each removal, planned alone, leaves the other administrator; the second to write
    waits on the admin group's lock and then finds it would leave the group empty."""
    with stores(pg, 3) as (first, second, check):
        apply(first, admin.add_member(_local(first), "Administrators", LOCAL, RULES), run_id=None)
        remove_root = admin.remove_member(_local(first), "Administrators", ROOT, RULES)
        remove_lee = admin.remove_member(_local(second), "Administrators", LOCAL, RULES)
        results = _race(first, remove_root, COMMIT, second, remove_lee)
        assert all(isinstance(r, ApplyResult) for r in results), results
        assert results[0].applied == 1
        assert [f.reason for f in results[1].failures] == ["admin-group-would-be-empty"]
        assert read_snapshot(check).admin_active == 1


# SQLSTATE of a statement that gave up waiting on a lock (`lock_timeout`).
LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def admin_group_locked(store: Store) -> Iterator[None]:
    """Another transaction holds the admin group's row lock, as a local admin action on
    the group does while it writes."""
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM groups WHERE reserved FOR UPDATE")).all()
        try:
            yield
        finally:
            conn.rollback()


@contextmanager
def impatient(url: str) -> Iterator[Store]:
    """A store whose statements fail (LOCK_NOT_AVAILABLE) instead of waiting on a lock."""
    store = open_store(make_url(url).update_query_dict({"options": "-c lock_timeout=1"}))
    try:
        yield store
    finally:
        store.dispose()


def _cycle(store: Store, groups: list[ExternalGroup], *, ann_active: bool = True) -> Plan:
    """East lists the local user, two people of its own and `groups`."""
    people = (ExternalUser("east-lee", LOCAL, display_name="Lee"),
              ExternalUser("east-ann", "ann@example.com", active=ann_active), ExternalUser("east-bob", "bob@example.com"))
    return plan(Snapshot(people, tuple(groups), (), None), _local(store), RULES, directory="east")


def test_cycles_of_ordinary_groups_do_not_wait_for_the_admin_group(pg: str) -> None:
    """Creating, linking, renaming, filling, emptying and unlinking groups other than
    `Administrators`, and deactivating users outside it, neither write it nor can empty
    it: no wait on its lock."""
    with stores(pg, 1) as (holder,), impatient(pg) as store:
        apply(store, admin.add_group(_local(store), "Sales", RULES), run_id=None)
        engineering = frozenset({"east-lee", "east-ann", "east-bob"})
        cycles = [
            lambda: _cycle(store, [ExternalGroup("east-eng", "Engineering", engineering),
                                   ExternalGroup("east-sales", "Sales", frozenset({"east-ann"}))]),
            lambda: _cycle(store, [ExternalGroup("east-eng", "Engineers", engineering)]),
            lambda: _cycle(store, [ExternalGroup("east-eng", "Engineers", engineering)], ann_active=False),
        ]
        actions: set[str] = set()
        with admin_group_locked(holder):
            for cycle in cycles:
                result = apply(store, cycle(), run_id=None)
                assert result.failures == ()
                actions |= set(result.actions)
        assert {"create-group", "link-group", "rename-group", "unlink-group", "add-member", "remove-member",
                "deactivate-user"} <= actions


def _add_lee_to_the_admins(store: Store) -> Plan:
    return admin.add_member(_local(store), "Administrators", LOCAL, RULES)


def _link_the_alias(store: Store) -> Plan:
    return _directory_plan(store, "east", alias=True)


def _deactivate_an_admin(store: Store) -> Plan:
    apply(store, _add_lee_to_the_admins(store), run_id=None)
    return admin.deactivate_user(_local(store), ROOT, RULES)


@pytest.mark.parametrize("writer", [_add_lee_to_the_admins, _link_the_alias, _deactivate_an_admin])
def test_writers_that_may_touch_the_admin_group_wait_for_its_lock(pg: str, writer: Any) -> None:
    with stores(pg, 1) as (holder,), impatient(pg) as store:
        the_plan = writer(store)
        with admin_group_locked(holder), pytest.raises(OperationalError) as raised:
            apply(store, the_plan, run_id=None, directory=the_plan.directory)
        assert getattr(raised.value.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


def _west(store: Store, *, lee_active: bool) -> Plan:
    people = (ExternalUser("west-lee", LOCAL, display_name="Lee", active=lee_active),)
    return plan(Snapshot(people, (), (), None), _local(store), RULES, directory="west")


def test_a_deactivation_racing_a_new_administrator_keeps_the_group_active(pg: str) -> None:
    """West deactivates Lee, planned when Lee was no administrator, so it takes no lock
    on the admin group. Meanwhile another writer makes Lee the group's only member (adds
    Lee and removes Root, its own check seeing Lee active) and holds its commit until west
    waits, on Lee's row. West then finds Lee in the group and runs again under the
    group's lock, where the deactivation would leave it without an active member."""
    with stores(pg, 2) as (west, check):
        apply(west, _west(west, lee_active=True), run_id=None)
        deactivate = _west(west, lee_active=False)
        results: list[Any] = [None]

        def run() -> None:
            try:
                results[0] = apply(west, deactivate, run_id=None)
            except Exception as exc:  # what the test reports
                results[0] = exc

        with check.engine.connect() as other:
            admins = "(SELECT id FROM groups WHERE reserved)"
            other.execute(text(f"INSERT INTO memberships (group_id, user_id) SELECT {admins}, id FROM users"
                               " WHERE email_key = :email"), {"email": LOCAL})
            other.execute(text(f"DELETE FROM memberships WHERE group_id = {admins}"
                               " AND user_id = (SELECT id FROM users WHERE email_key = :email)"), {"email": ROOT})
            writer = threading.Thread(target=run)
            writer.start()
            _wait_until_a_writer_waits_on_a_lock(check)
            other.commit()
            writer.join(60)
        assert isinstance(results[0], ApplyResult), results
        assert [f.reason for f in results[0].failures] == ["admin-group-would-be-empty"]
        assert _binding(check, LOCAL) == ("west", True)
        assert read_snapshot(check).admin_active == 1
