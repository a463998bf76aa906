"""S2 staged plans under frozen time: a halted plan stays staged until someone decides.

Each test drives real cycles of a file directory through `run_cycle` and decides through
`reconcile.staging`, on SQLite and PostgreSQL. `[safety] max_deactivations = 2`, so
three departures halt a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

import config
from config import Settings
from connectors.file import FileConnector
from reconcile.cycle import RunResult, run_cycle
from reconcile.model import Changes, Snapshot
from reconcile.staging import NO_LONGER_CONFIRMED, NotStaged, approve, reject
from store import Store, StagedPlan, SyncRun, User, export_state, get_staged, list_events, open_plans
from service import admin as admin_actions
from service import status
from cli import status_view

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EVERYONE = ["u1", "u2", "u3", "u4", "u5"]


class IncrementalFile:
    """The file connector read the way an IdP's incremental read behaves: with a watermark
    it reports every record as changed and no removals, so only a full read sees who left."""

    def __init__(self, path: Path) -> None:
        self.inner = FileConnector(path)

    def read(self, watermark: str | None, progress: object = None) -> Snapshot | Changes:
        snapshot = self.inner.read(None)
        assert isinstance(snapshot, Snapshot)
        if watermark is None:
            return snapshot
        return Changes(users=snapshot.users, groups=snapshot.groups,
                       members_complete=frozenset(g.external_id for g in snapshot.groups),
                       watermark=snapshot.watermark)

    def close(self) -> None:
        pass


class HR:
    """A file directory `hr` (users u1..., group g1 "Staff" of all of them) and its cycles."""

    def __init__(self, folder: Path, store: Store, frozen: Any) -> None:
        self.path = folder / "hr.json"
        self.store = store
        self.frozen = frozen
        config_file = folder / "dirsync.toml"
        config_file.write_text(
            f'[store]\nurl = "{store.url}"\n[safety]\nmax_deactivations = 2\n'
            '[directories.hr]\nkind = "file"\npath = "hr.json"\n'
        )
        self.settings: Settings = config.load(config_file, environ={})

    def write(self, ids: list[str]) -> None:
        users = [{"id": i, "email": f"{i}@example.com"} for i in ids]
        self.path.write_text(json.dumps({"users": users, "groups": [{"id": "g1", "name": "Staff", "members": ids}]}))

    def cycle(self, *, minutes_later: int = 40, **options: Any) -> RunResult:
        self.frozen.tick(timedelta(minutes=minutes_later))
        options.setdefault("connector", IncrementalFile(self.path))
        return run_cycle(self.settings, "hr", store=self.store, **options)

    def active(self) -> list[str]:
        with self.store.session() as session:
            return sorted(u.external_id for u in session.scalars(select(User).where(User.active)))

    def staff(self) -> list[str]:
        with self.store.session() as session:
            [group] = [g for g in export_state(session)["groups"] if g["name"] == "Staff"]
        return sorted(email.split("@")[0] for email in group["members"])

    def plan(self, run_id: int) -> StagedPlan:
        with self.store.session() as session:
            row = get_staged(session, run_id)
            assert row is not None
            session.expunge(row)
            return row

    def open_runs(self) -> list[int]:
        with self.store.session() as session:
            return [p.run_id for p in open_plans(session, "hr")]

    def run(self, run_id: int) -> SyncRun:
        with self.store.session() as session:
            row = session.get(SyncRun, run_id)
            assert row is not None
            session.expunge(row)
            return row


@pytest.fixture
def hr(tmp_path: Path, store: Store) -> Iterator[HR]:
    with freeze_time(T0) as frozen:
        directory = HR(tmp_path, store, frozen)
        directory.write(EVERYONE)
        assert directory.cycle(minutes_later=0).status == "succeeded"
        yield directory


@pytest.fixture
def halted(hr: HR) -> int:
    """u3, u4 and u5 left the directory: a full cycle halts. The halted run's id."""
    hr.write(["u1", "u2"])
    result = hr.cycle(full=True)
    assert result.status == "halted", result.error
    assert result.run_id is not None
    return result.run_id


@contextmanager
def busy(name: str) -> Iterator[bool]:
    yield False  # a cycle of the directory holds its lock


def test_halted_run_stages_its_plan_with_the_limit_the_deactivations_and_the_removals(hr: HR, halted: int) -> None:
    plan = hr.plan(halted)

    assert (plan.directory, plan.status, plan.safety_limit) == ("hr", "open", "max_deactivations")
    assert plan.created_at == T0 + timedelta(minutes=40)
    assert "3 deactivations exceed max_deactivations = 2" in plan.reason
    assert sorted(plan.deactivations) == ["u3@example.com", "u4@example.com", "u5@example.com"]
    assert sorted(r["email"] for r in plan.removals) == ["u3@example.com", "u4@example.com", "u5@example.com"]
    assert {r["group"] for r in plan.removals} == {"Staff"}
    assert hr.active() == EVERYONE


def test_halt_message_names_the_commands_that_decide(hr: HR) -> None:
    hr.write(["u1", "u2"])
    result = hr.cycle(full=True)

    assert result.error is not None
    assert "`dirsync staged hr`" in result.error and f"`dirsync approve {result.run_id}`" in result.error
    assert "--allow-deactivations" not in result.error


def test_incremental_cycles_after_a_halt_read_in_full_halt_again_and_never_clear_it(hr: HR, halted: int) -> None:
    later = [hr.cycle() for _ in range(3)]

    assert [(r.status, r.mode) for r in later] == [("halted", "full")] * 3
    assert hr.active() == EVERYONE
    assert hr.open_runs() == [later[-1].run_id]
    assert hr.plan(halted).status == "superseded" and hr.plan(halted).decided_run_id == later[0].run_id
    [view] = status.collect(hr.settings, hr.store, T0 + timedelta(hours=3))
    assert view.halted and view.staged_run_id == later[-1].run_id and view.staged_deactivations == 3


def test_status_shows_how_many_deactivations_await_approval_and_since_when(hr: HR, halted: int) -> None:
    now = T0 + timedelta(minutes=50)
    [view] = status.collect(hr.settings, hr.store, now)

    text = status_view.render_text([view], now)

    assert f"halted:      3 deactivations awaiting approval (run {halted}, since 2026-03-02 09:40:00Z" in text


def test_approve_applies_exactly_the_staged_operations_the_directory_still_confirms(hr: HR, halted: int) -> None:
    hr.write(["u1", "u2", "u5", "u6"])  # u5 came back; u6 is new and was never staged
    hr.frozen.tick(timedelta(minutes=5))

    decision = approve(hr.settings, halted, by="alice", store=hr.store, connector=FileConnector(hr.path))

    assert decision.status == "approved" and decision.error is None
    assert hr.active() == ["u1", "u2", "u5"]
    assert hr.staff() == ["u1", "u2", "u5"]
    assert sorted((op.action.value, op.target) for op in decision.dropped) == [
        ("deactivate-user", "u5@example.com"), ("remove-member", "Staff")]
    assert decision.run_id is not None
    dropped = [e for e in _events(hr, decision.run_id) if e.reason == NO_LONGER_CONFIRMED]
    assert sorted((e.action, e.outcome) for e in dropped) == [("deactivate-user", "rejected"), ("remove-member", "rejected")]
    plan = hr.plan(halted)
    assert (plan.status, plan.decided_by, plan.decided_run_id) == ("approved", "alice", decision.run_id)
    assert plan.decided_at == T0 + timedelta(minutes=45)
    run = hr.run(decision.run_id)
    assert (run.trigger, run.mode, run.status) == ("approval", "full", "succeeded")


def staged_before_an_administrator_left(hr: HR) -> int:
    """Administrators (local) holds u1, u2 and root; u2 has left the directory. The plan
    staged while root was active deactivates u1; then root is deactivated here and u2 comes
    back: the fresh plan lets u1 go because it activates u2, which was never staged. The
    staged run's id."""
    admin_actions.add_user(hr.settings, hr.store, "root@example.com")
    for email in ("u1@example.com", "u2@example.com", "root@example.com"):
        admin_actions.add_member(hr.settings, hr.store, "Administrators", email)
    hr.write(["u1", "u3", "u4", "u5"])
    assert hr.cycle(full=True).status == "succeeded"
    hr.write(["u5"])
    staged = hr.cycle(full=True)
    assert staged.status == "halted" and staged.run_id is not None
    admin_actions.deactivate_user(hr.settings, hr.store, "root@example.com")
    hr.write(["u2", "u5"])
    return staged.run_id


def test_approve_holds_a_staged_deactivation_that_leaned_on_an_activation_never_staged(hr: HR) -> None:
    staged = staged_before_an_administrator_left(hr)

    decision = approve(hr.settings, staged, by="alice", store=hr.store, connector=FileConnector(hr.path))

    assert decision.status == "approved" and decision.error is None
    assert decision.run_id is not None
    assert hr.run(decision.run_id).status == "succeeded"
    assert hr.active() == ["u1", "u5"]
    events = _events(hr, decision.run_id)
    held = [e for e in events if e.reason == "last-active-administrator"]
    assert [(e.target, e.outcome) for e in held] == [("u1@example.com", "rejected")]
    assert not [e for e in events if e.outcome == "conflict"]
    assert (hr.plan(staged).status, hr.plan(staged).decided_run_id) == ("approved", decision.run_id)
    assert decision.note == ("1 approved change held: 'Administrators' must keep an active member (R4);"
                             f" see `dirsync events {decision.run_id}`")


def test_a_staged_deactivation_the_fresh_plan_holds_by_r4_is_dropped_saying_so(hr: HR) -> None:
    staged = staged_before_an_administrator_left(hr)
    hr.write(["u5"])  # u2 stays away: u1 is now the last active administrator

    decision = approve(hr.settings, staged, by="alice", store=hr.store, connector=FileConnector(hr.path))

    assert decision.status == "approved" and decision.run_id is not None
    assert "u1" in hr.active()
    dropped = [e for e in _events(hr, decision.run_id) if e.reason == NO_LONGER_CONFIRMED]
    assert [(e.target, e.detail) for e in dropped] == [
        ("u1@example.com", "held: the user is among the last active members of 'Administrators' (R4); not applied")]


def test_after_an_approval_held_by_r4_the_next_cycle_lets_the_administrator_go(hr: HR) -> None:
    staged = staged_before_an_administrator_left(hr)
    approve(hr.settings, staged, by="alice", store=hr.store, connector=FileConnector(hr.path))

    result = hr.cycle(full=True)

    assert result.status == "succeeded"
    assert hr.active() == ["u2", "u5"]


def test_after_an_approval_the_next_cycle_brings_in_what_was_never_staged(hr: HR, halted: int) -> None:
    hr.write(["u1", "u2", "u6"])
    approve(hr.settings, halted, by="alice", store=hr.store, connector=FileConnector(hr.path))

    result = hr.cycle()

    assert result.status == "succeeded"
    assert hr.active() == ["u1", "u2", "u6"]


def test_approve_of_a_run_that_is_not_an_open_staged_plan_is_refused(hr: HR, halted: int) -> None:
    approve(hr.settings, halted, by="alice", store=hr.store, connector=FileConnector(hr.path))

    with pytest.raises(NotStaged, match=f"run {halted} is not an open staged plan: approved by alice"):
        approve(hr.settings, halted, store=hr.store, connector=FileConnector(hr.path))
    with pytest.raises(NotStaged, match="no such staged plan"):
        approve(hr.settings, 999, store=hr.store, connector=FileConnector(hr.path))


def test_reject_closes_the_plan_without_applying_and_the_next_cycle_halts_again(hr: HR, halted: int) -> None:
    decision = reject(hr.settings, halted, by="bob", store=hr.store)

    assert decision.status == "rejected"
    plan = hr.plan(halted)
    assert (plan.status, plan.decided_by) == ("rejected", "bob")
    assert hr.active() == EVERYONE
    [view] = status.collect(hr.settings, hr.store, T0 + timedelta(hours=1))
    assert not view.halted
    with pytest.raises(NotStaged):
        approve(hr.settings, halted, store=hr.store, connector=FileConnector(hr.path))
    again = hr.cycle(full=True)
    assert again.status == "halted" and hr.open_runs() == [again.run_id]


def test_a_full_cycle_within_the_limits_supersedes_the_open_plan(hr: HR, halted: int) -> None:
    hr.write(["u1", "u2", "u3", "u4"])  # three came back: one departure is within the limit

    result = hr.cycle()

    assert (result.status, result.mode) == ("succeeded", "full")
    assert hr.active() == ["u1", "u2", "u3", "u4"]
    assert hr.open_runs() == []
    assert (hr.plan(halted).status, hr.plan(halted).decided_run_id) == ("superseded", result.run_id)


def test_allow_deactivations_approves_the_plan_its_own_full_read_computes(hr: HR, halted: int) -> None:
    result = hr.cycle(allow_deactivations=True)  # an incremental read would not see who left

    assert (result.status, result.mode) == ("succeeded", "full")
    assert hr.active() == ["u1", "u2"]
    assert result.run_id is not None
    own = hr.plan(result.run_id)
    assert (own.status, own.decided_run_id) == ("approved", result.run_id) and own.decided_by
    assert hr.plan(halted).status == "superseded"


def test_an_empty_read_is_applied_only_by_approve(hr: HR) -> None:
    hr.write([])
    first = hr.cycle(full=True)
    assert first.status == "halted" and first.run_id is not None
    assert hr.plan(first.run_id).safety_limit == "empty-read"

    allowed = hr.cycle(allow_deactivations=True)

    assert allowed.status == "halted" and "does not apply an empty read" in (allowed.error or "")
    assert hr.active() == EVERYONE
    assert allowed.run_id is not None
    decision = approve(hr.settings, allowed.run_id, by="alice", store=hr.store, connector=FileConnector(hr.path))
    assert decision.status == "approved"
    assert hr.active() == []


def test_approve_while_a_cycle_holds_the_lock_applies_nothing_and_keeps_the_plan(hr: HR, halted: int) -> None:
    decision = approve(hr.settings, halted, store=hr.store, connector=FileConnector(hr.path), lock=busy)

    assert decision.status == "skipped" and "running" in (decision.error or "")
    assert hr.active() == EVERYONE
    assert hr.open_runs() == [halted]


def test_approve_whose_read_fails_applies_nothing_and_keeps_the_plan(hr: HR, halted: int) -> None:
    hr.path.unlink()

    decision = approve(hr.settings, halted, store=hr.store, connector=FileConnector(hr.path))

    assert decision.status == "failed" and "does not exist" in (decision.error or "")
    assert hr.active() == EVERYONE
    assert hr.open_runs() == [halted]


def _events(hr: HR, run_id: int) -> list[Any]:
    with hr.store.session() as session:
        rows = list_events(session, run_id)
        for row in rows:
            session.expunge(row)
        return rows
