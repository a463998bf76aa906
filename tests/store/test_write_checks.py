"""Write-time checks (DESIGN §2a): plans made from the same state, applied one after the
other, as concurrent writers would. The second writer meets what the first committed and
records a conflict instead of writing over it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import Settings, parse
from reconcile.cycle import run_cycle

from reconcile import admin as actions
from reconcile.apply import apply
from reconcile.model import ExternalGroup, ExternalUser, LocalState, Plan, RuleSettings, Snapshot
from reconcile.plan import plan, plan_disable
from store import (
    Store,
    ensure_directory,
    export_state,
    get_directory,
    get_run,
    list_events,
    load_local_state,
    set_enabled,
    start_run,
)
from store.models import Outcome, groups, memberships, users

RULES = RuleSettings()


def state(store: Store) -> LocalState:
    with store.session() as session:
        return load_local_state(session)


def local_user(store: Store, email: str) -> None:
    apply(store, actions.add_user(state(store), email, None, RULES), run_id=None)


def sync(store: Store, directory: str, snapshot: Snapshot, **kwargs: object) -> None:
    with store.session(write=True) as session:
        ensure_directory(session, directory, "file")
    result = apply(store, plan(snapshot, state(store), RULES, directory=directory), run_id=None, **kwargs)  # type: ignore[arg-type]
    assert result.failed == result.conflicts == 0, result.failures


def exported(store: Store) -> dict[str, list[dict[str, object]]]:
    with store.session() as session:
        return export_state(session)  # type: ignore[no-any-return]


def users_by_email(store: Store) -> dict[str, dict[str, object]]:
    return {u["email"]: u for u in exported(store)["users"]}


def active_admins(store: Store) -> int:
    with store.engine.connect() as conn:
        admin = conn.execute(select(groups.c.id).where(groups.c.reserved.is_(True))).scalar_one()
        query = (
            select(func.count())
            .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
            .where(memberships.c.group_id == admin, users.c.active.is_(True))
        )
        return int(conn.execute(query).scalar_one())


def reasons(result: object) -> set[str]:
    return {f.reason for f in result.failures if f.outcome is Outcome.CONFLICT}  # type: ignore[attr-defined]


def snap(*users: ExternalUser, groups: tuple[ExternalGroup, ...] = ()) -> Snapshot:
    return Snapshot(users=users, groups=groups)


def test_two_directories_linking_one_local_user_never_take_it_from_each_other(store: Store) -> None:
    local_user(store, "ana@example.com")
    for name in ("okta", "entra"):
        with store.session(write=True) as session:
            ensure_directory(session, name, "file")
    before = state(store)
    okta = plan(snap(ExternalUser("o1", "ana@example.com", "Ana")), before, RULES, directory="okta")
    entra = plan(snap(ExternalUser("e1", "ana@example.com", "Anna")), before, RULES, directory="entra")

    assert apply(store, okta, run_id=None).conflicts == 0
    late = apply(store, entra, run_id=None)

    user_ops = [op for op in entra.operations if op.user is not None]
    assert late.applied == 0 and late.conflicts == len(user_ops) == 2
    assert reasons(late) == {"owned-by-other-directory"}
    ana = users_by_email(store)["ana@example.com"]
    assert (ana["managed_by"], ana["external_id"], ana["given_name"]) == ("okta", "o1", "Ana")


def test_an_update_planned_from_values_someone_changed_since_is_a_conflict(store: Store) -> None:
    sync(store, "okta", snap(ExternalUser("o1", "ana@example.com", "Ana")))
    stale = plan(snap(ExternalUser("o1", "ana@example.com", "Anna")), state(store), RULES, directory="okta")
    sync(store, "okta", snap(ExternalUser("o1", "ana@example.com", "Annie")))

    result = apply(store, stale, run_id=None)

    assert reasons(result) == {"changed-since-planned"}
    assert users_by_email(store)["ana@example.com"]["given_name"] == "Annie"  # no lost update


def test_an_operation_already_in_place_is_a_noop_not_a_conflict(store: Store) -> None:
    sync(store, "okta", snap(ExternalUser("o1", "ana@example.com", "Ana")))
    wanted = plan(snap(ExternalUser("o1", "ana@example.com", "Anna")), state(store), RULES, directory="okta")

    assert apply(store, wanted, run_id=None).applied == 1
    again = apply(store, wanted, run_id=None)

    assert again.noop == 1 and again.conflicts == 0


def _two_directory_admins(store: Store) -> None:
    """Administrators (local) holds A, managed by okta, and B, managed by entra."""
    sync(store, "okta", snap(ExternalUser("o1", "a@example.com")))
    sync(store, "entra", snap(ExternalUser("e1", "b@example.com")))
    for email in ("a@example.com", "b@example.com"):
        apply(store, actions.add_member(state(store), "Administrators", email, RULES), run_id=None)
    assert active_admins(store) == 2


def test_two_directories_each_deactivating_their_admin_leave_one_active(store: Store) -> None:
    _two_directory_admins(store)
    before = state(store)
    okta = plan(snap(ExternalUser("o1", "a@example.com", active=False)), before, RULES, directory="okta")
    entra = plan(snap(ExternalUser("e1", "b@example.com", active=False)), before, RULES, directory="entra")

    first = apply(store, okta, run_id=None)
    second = apply(store, entra, run_id=None)

    assert first.applied and not first.conflicts
    assert reasons(second) == {"admin-group-would-be-empty"}
    assert active_admins(store) == 1


def test_two_admin_removals_from_one_state_keep_the_last_member(store: Store) -> None:
    local_user(store, "a@example.com")
    local_user(store, "b@example.com")
    for email in ("a@example.com", "b@example.com"):
        apply(store, actions.add_member(state(store), "Administrators", email, RULES), run_id=None)
    before = state(store)
    remove_a = actions.remove_member(before, "Administrators", "a@example.com", RULES)
    remove_b = actions.remove_member(before, "Administrators", "b@example.com", RULES)

    assert apply(store, remove_a, run_id=None).applied == 1
    late = apply(store, remove_b, run_id=None)

    assert reasons(late) == {"admin-group-would-be-empty"} and late.applied == 0
    assert active_admins(store) == 1


def test_an_admin_action_on_a_row_that_became_managed_is_refused_at_write_time(store: Store) -> None:
    local_user(store, "ana@example.com")
    deactivate = actions.deactivate_user(state(store), "ana@example.com", RULES)
    sync(store, "okta", snap(ExternalUser("o1", "ana@example.com")))  # links ana meanwhile

    result = apply(store, deactivate, run_id=None)

    assert reasons(result) == {"managed"}
    assert users_by_email(store)["ana@example.com"]["active"] is True


def _alias(*members: str) -> tuple[ExternalGroup, ...]:
    return (ExternalGroup("g-admins", "Split_Administrators", frozenset(members)),)


def test_an_admin_swap_cut_into_single_operation_transactions_never_commits_it_empty(store: Store) -> None:
    a, b = ExternalUser("a", "a@example.com"), ExternalUser("b", "b@example.com")
    sync(store, "okta", snap(a, groups=_alias("a")))
    swap = plan(snap(a, b, groups=_alias("b")), state(store), RULES, directory="okta")
    seen: list[int] = []

    result = apply(store, swap, run_id=None, chunk_size=1, progress=lambda done, total: seen.append(active_admins(store)))

    assert result.conflicts == 0
    assert len(seen) == len(swap.operations) > 2 and min(seen) >= 1
    admins = {g["name"]: g["members"] for g in exported(store)["groups"]}["Administrators"]
    assert admins == ["b@example.com"]


def test_a_swap_whose_add_fails_keeps_the_old_admin_and_says_so(store: Store) -> None:
    a, b = ExternalUser("a", "a@example.com"), ExternalUser("b", "b@example.com")
    sync(store, "okta", snap(a, groups=_alias("a")))
    swap = plan(snap(a, b, groups=_alias("b")), state(store), RULES, directory="okta")
    local_user(store, "b@example.com")  # a concurrent add-user takes B's email

    result = apply(store, swap, run_id=None, chunk_size=1)

    assert "admin-group-would-be-empty" in reasons(result) and "changed-since-planned" in reasons(result)
    admins = {g["name"]: g["members"] for g in exported(store)["groups"]}["Administrators"]
    assert admins == ["a@example.com"]


def _inactive_and_active_local_admins(store: Store) -> Plan:
    """C (inactive) and D (active) are local administrators; okta's plan links both, C
    active and in its alias, D disabled: R4 counts C, so D is deactivated in the same plan."""
    for email in ("c@example.com", "d@example.com"):
        local_user(store, email)
        apply(store, actions.add_member(state(store), "Administrators", email, RULES), run_id=None)
    apply(store, actions.deactivate_user(state(store), "c@example.com", RULES), run_id=None)
    with store.session(write=True) as session:
        ensure_directory(session, "okta", "file")
    c, d = ExternalUser("c", "c@example.com"), ExternalUser("d", "d@example.com", active=False)
    return plan(snap(c, d, groups=_alias("c")), state(store), RULES, directory="okta")


def test_an_activation_that_makes_room_for_the_last_admins_deactivation_never_commits_it_empty(store: Store) -> None:
    handover = _inactive_and_active_local_admins(store)
    seen: list[int] = []

    result = apply(store, handover, run_id=None, chunk_size=1,
                   progress=lambda done, total: seen.append(active_admins(store)))

    assert result.conflicts == 0
    assert len(seen) == len(handover.operations) > 2 and min(seen) >= 1
    assert {u: row["active"] for u, row in users_by_email(store).items()} == {"c@example.com": True,
                                                                            "d@example.com": False}


def test_an_activation_that_conflicts_keeps_the_last_admin_active_and_says_so(store: Store) -> None:
    handover = _inactive_and_active_local_admins(store)
    with store.session(write=True) as session:
        ensure_directory(session, "entra", "file")
    sync(store, "entra", snap(ExternalUser("e1", "c@example.com", active=False)))  # entra links C first

    result = apply(store, handover, run_id=None, chunk_size=1)

    assert {"owned-by-other-directory", "admin-group-would-be-empty"} <= reasons(result)
    assert users_by_email(store)["d@example.com"]["active"] is True and active_admins(store) == 1


def test_a_disable_while_a_cycle_applies_stops_its_writes_and_every_operation_has_an_outcome(store: Store) -> None:
    with store.session(write=True) as session:
        generation = ensure_directory(session, "okta", "file").generation
        run_id = start_run(session, directory="okta", trigger="cli", mode="full")
    many = plan(snap(*(ExternalUser(f"u{n}", f"u{n}@example.com") for n in range(10))), state(store), RULES,
                directory="okta")

    def disable_after_first_chunk(done: int, total: int) -> None:
        if done == 1:
            with store.session(write=True) as session:
                set_enabled(session, "okta", False)
            apply(store, plan_disable(state(store), "okta"), run_id=None, directory="okta")

    result = apply(store, many, run_id=run_id, chunk_size=1, generation=generation, progress=disable_after_first_chunk)

    assert result.aborted is not None and "disabled" in result.aborted
    assert result.applied == 1 and result.conflicts == len(many.operations) - 1
    everyone = users_by_email(store)
    assert len(everyone) == 1 and all(u["managed_by"] is None for u in everyone.values())
    with store.session() as session:
        events = list_events(session, run_id)
    assert len(events) == len(many.operations)
    assert {e.reason for e in events if e.outcome == "conflict"} == {"directory-disabled"}


def test_a_plan_of_an_older_generation_writes_nothing(store: Store) -> None:
    with store.session(write=True) as session:
        generation = ensure_directory(session, "okta", "file").generation
        set_enabled(session, "okta", False)
        set_enabled(session, "okta", True)
    late = plan(snap(ExternalUser("u1", "u1@example.com")), state(store), RULES, directory="okta")

    result = apply(store, late, run_id=None, generation=generation)

    assert result.aborted is not None and "enabled again" in result.aborted
    assert exported(store)["users"] == []


def test_plans_without_operations_need_no_checks(store: Store) -> None:
    assert apply(store, Plan("okta"), run_id=None).outcomes == {}


# --- through a whole cycle -------------------------------------------------------------------


class _LockThatRaces:
    """A cycle lock whose write checkpoint lets a concurrent writer in once, just before
    the cycle's first write transaction."""

    def __init__(self, race: Callable[[], None]) -> None:
        self.race: Callable[[], None] | None = race

    def __bool__(self) -> bool:
        return True

    def check(self) -> None:
        if self.race is not None:
            race, self.race = self.race, None
            race()

    @contextmanager
    def __call__(self, name: str) -> Iterator[_LockThatRaces]:
        yield self


def _file_settings(store: Store, folder: Path, users: list[dict[str, object]]) -> Settings:
    path = folder / "directory.json"
    path.write_text(json.dumps({"users": users, "groups": []}))
    return parse({"store": {"url": str(store.engine.url)},
                  "directories": {"hr": {"kind": "file", "path": str(path)}}}, {})


def test_a_cycle_whose_write_meets_a_concurrent_change_ends_partial(store: Store, tmp_path: Path) -> None:
    settings = _file_settings(store, tmp_path, [{"id": "u1", "email": "ana@example.com"},
                                                 {"id": "u2", "email": "bo@example.com"}])

    result = run_cycle(settings, "hr", store=store, trigger="task",
                       lock=_LockThatRaces(lambda: local_user(store, "bo@example.com")))

    assert result.status == "partial"
    assert result.error is not None and "1 conflicted" in result.error and f"dirsync events {result.run_id}" in result.error
    with store.session() as session:
        run = get_run(session, result.run_id)  # type: ignore[arg-type]
        row = get_directory(session, "hr")
    assert run is not None and run.status == "partial"
    assert row is not None and row.watermark is None and row.consecutive_failures == 1
    # The next cycle plans again and links the user the concurrent writer created.
    again = run_cycle(settings, "hr", store=store)
    assert again.status == "succeeded"
    assert users_by_email(store)["bo@example.com"]["managed_by"] == "hr"


def test_a_cycle_overtaken_by_disable_ends_aborted_and_keeps_the_cleared_watermark(store: Store, tmp_path: Path) -> None:
    settings = _file_settings(store, tmp_path, [{"id": "u1", "email": "ana@example.com"}])

    def disable() -> None:
        with store.session(write=True) as session:
            set_enabled(session, "hr", False).watermark = None

    result = run_cycle(settings, "hr", store=store, lock=_LockThatRaces(disable))

    assert result.status == "aborted" and result.error is not None and "disabled" in result.error
    with store.session() as session:
        row = get_directory(session, "hr")
    assert row is not None and not row.enabled and row.watermark is None
    assert exported(store)["users"] == []


def test_a_cycle_whose_bookkeeping_fails_ends_its_run_failed_not_running(store: Store, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _file_settings(store, tmp_path, [{"id": "u1", "email": "ana@example.com"}])

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr("reconcile.cycle.record_success", broken)
    result = run_cycle(settings, "hr", store=store)

    assert result.status == "failed" and "the store went away" in (result.error or "")
    with store.session() as session:
        run = get_run(session, result.run_id)  # type: ignore[arg-type]
    assert run is not None and run.status == "failed"
