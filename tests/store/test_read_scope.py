"""`store.load_for_read`: a full read of one directory loads that directory's rows and the
rows its records' keys meet, not the rest of the store."""

from __future__ import annotations

from reconcile import admin as actions
from reconcile.apply import apply
from reconcile.model import ExternalGroup, ExternalUser, LocalState, RuleSettings, Snapshot
from reconcile.plan import plan
from store import Store, load_for_read, load_local_state
from store import read_scope

RULES = RuleSettings()
RESERVED = RULES.reserved_names


def _sync(store: Store, directory: str, snapshot: Snapshot) -> None:
    with store.session() as session:
        local = load_local_state(session)
    apply(store, plan(snapshot, local, RULES, directory=directory), run_id=None, directory=directory)


def _users(prefix: str, count: int) -> tuple[ExternalUser, ...]:
    return tuple(ExternalUser(f"{prefix}{i}", f"{prefix}{i}@example.com") for i in range(count))


def _scope(store: Store, directory: str, snapshot: Snapshot) -> LocalState:
    with store.session() as session:
        return load_for_read(session, directory, snapshot, links={}, reserved_names=RESERVED)


def _seed_two_directories(store: Store) -> tuple[Snapshot, Snapshot]:
    hr = Snapshot(_users("h", 4), (ExternalGroup("hg", "Staff", frozenset({"h0", "h1"})),
                                   ExternalGroup("ha", "Split_Administrators", frozenset({"h0"}))))
    crm = Snapshot(_users("c", 3), (ExternalGroup("cg", "Sales", frozenset({"c0", "c1", "c2"})),))
    _sync(store, "hr", hr)
    _sync(store, "crm", crm)
    return hr, crm


def test_a_full_read_loads_its_own_directory_and_the_admin_group_only(store: Store) -> None:
    _, crm = _seed_two_directories(store)

    scope = _scope(store, "crm", crm)

    assert sorted(u.email for u in scope.users) == ["c0@example.com", "c1@example.com", "c2@example.com",
                                                    "h0@example.com"]  # Administrators' member (R4)
    assert sorted(g.name for g in scope.groups) == ["Administrators", "Sales"]


def test_a_record_meeting_another_directorys_row_loads_that_row(store: Store) -> None:
    _, crm = _seed_two_directories(store)
    # crm now claims hr's address and hr's group name: both rows must be weighed (R1, R6).
    claims = Snapshot(crm.users + (ExternalUser("c9", "H2@example.com"),),
                      crm.groups + (ExternalGroup("cs", "staff", frozenset()),))

    scope = _scope(store, "crm", claims)

    assert "h2@example.com" in {u.email for u in scope.users}
    staff = next(g for g in scope.groups if g.name == "Staff")
    assert len(staff.members) == 2  # whole: a name another record claims
    with store.session() as session:
        whole = load_local_state(session)
    assert plan(claims, scope, RULES, directory="crm") == plan(claims, whole, RULES, directory="crm")


def test_a_bound_row_the_read_no_longer_names_comes_with_its_other_groups(store: Store) -> None:
    # c0 was a local account in a local group before crm bound it (R1).
    for action in (lambda local: actions.add_user(local, "c0@example.com", None, RULES),
                   lambda local: actions.add_group(local, "Legacy", RULES),
                   lambda local: actions.add_member(local, "Legacy", "c0@example.com", RULES)):
        with store.session() as session:
            apply(store, action(load_local_state(session)), run_id=None, directory=None)
    _, crm = _seed_two_directories(store)
    # c0's record is gone and a new person (c7) has its address: the row is re-bound and
    # leaves every group (R7), the local one too.
    reused = Snapshot(crm.users[1:] + (ExternalUser("c7", "c0@example.com"),), crm.groups)

    scope = _scope(store, "crm", reused)

    legacy = next(g for g in scope.groups if g.name == "Legacy")
    row = next(u for u in scope.users if u.email == "c0@example.com")
    assert legacy.members == {row.id}
    with store.session() as session:
        whole = load_local_state(session)
    the_plan = plan(reused, scope, RULES, directory="crm")
    assert the_plan == plan(reused, whole, RULES, directory="crm")
    assert any(op.group is not None and op.group.local_id == legacy.id for op in the_plan.operations)


def test_a_directory_holding_most_of_the_store_loads_it_whole(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hr, crm = _seed_two_directories(store)
    monkeypatch.setattr(read_scope, "WHOLE_STORE_READ", 3)

    # hr reads 4 of the store's 7 users: looking them up costs more than reading all 7.
    assert len(_scope(store, "hr", hr).users) == 7
    # crm reads 3 of 7: its scope.
    assert len(_scope(store, "crm", crm).users) == 4
