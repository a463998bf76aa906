"""R4 across chunk boundaries: a `Split_Administrators` swap {A} -> {B} in a plan of many
chunks (DESIGN §2a, issue 9).

The cycle runs as `dirsync sync hr` in a child process whose applies commit a few
operations at a time; after every commit a second connection counts the active members of
`Administrators`, so every state the cycle commits is seen. Proven:
- the swap applied whole: `Administrators` never empty at any commit, {B} at the end;
- the cycle SIGKILLed after each of its commits (and so between any two chunks, among
  them the one between "add B" and "remove A"): never empty at any commit nor after the
  kill; the next cycle finishes the swap;
- B's create fails because a concurrent `dirsync admin add-user` took B's email after the
  plan was made: "remove A" is refused at write time (`admin-group-would-be-empty`), A
  stays, the run ends `partial` (exit 1); the next cycle links B and finishes the swap.
"""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

import config
from reconcile import clock
from reconcile.cycle import run_cycle
from reconcile.model import Action
from store import export_state, open_store
from store.models import sync_runs
from tests.concurrency import actors
from tests.conftest import _empty_postgres
from tests.concurrency.invariants import read_log, read_snapshot, replay_log, run_accounting

NAME = "hr"
A, B = "a@example.com", "zz-b@example.com"
OLD_USERS, NEW_USERS = 200, 300


def _org(swapped: bool) -> dict[str, Any]:
    """Before: 200 people, A the only administrator. After: 300 more, and 10 disabled
    (each a create, membership changes and a deactivation), and B, listed last, replaces
    A in the alias."""
    people = [{"id": "a", "email": A, "display_name": "A"}]
    people += [{"id": f"u{i}", "email": f"user{i}@example.com", "active": not (swapped and 150 <= i < 160)}
               for i in range(1, OLD_USERS)]
    if swapped:
        people += [{"id": f"n{i}", "email": f"new{i}@example.com"} for i in range(NEW_USERS)]
        people.append({"id": "zz-b", "email": B, "display_name": "B"})
    team = [p["id"] for p in people if p["id"] not in ("a", "zz-b")]
    return {"users": people, "groups": [
        {"id": "team", "name": "Team", "members": team},
        {"id": "admins", "name": "Split_Administrators", "members": ["zz-b" if swapped else "a"]},
    ]}


class Case:
    """A store after the first cycle (A administers), and the directory file swapped."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder
        self.file = folder / "hr.json"
        self.config = folder / "dirsync.toml"
        self.config.write_text(f'[store]\nurl = "{url}"\n[worker]\nlock_ttl_seconds = 10\n'
                               f'[directories.{NAME}]\nkind = "file"\npath = "hr.json"\n')
        self.settings = config.load(self.config, environ={})
        self.file.write_text(json.dumps(_org(swapped=False)))
        self.store = open_store(url, check_schema=False)
        self.store.upgrade()
        assert run_cycle(self.settings, NAME, store=self.store).status == "succeeded"
        assert self.admins() == [A]
        self.file.write_text(json.dumps(_org(swapped=True)))

    def positions(self) -> tuple[int, int]:
        """Where "add B" and "remove A" stand in the swap's plan."""
        plan = run_cycle(self.settings, NAME, store=self.store, dry_run=True).plan
        assert plan is not None
        ops = plan.operations
        add_b = next(n for n, op in enumerate(ops) if op.action is Action.ADD_MEMBER and op.value("member") == B)
        remove_a = next(n for n, op in enumerate(ops) if op.action is Action.REMOVE_MEMBER and op.target == "Administrators")
        return add_b, remove_a

    def sync_in_child(self, chunk_size: int, name: str, **hooks: Any) -> tuple[dict[str, Any] | None, int, list[dict[str, Any]]]:
        """`dirsync sync hr` in a child; its report (None when killed), exit code and commits."""
        files = {"commits": str(self.folder / f"{name}.commits"), "paused": str(self.folder / f"{name}.paused"),
                 "go": str(self.folder / f"{name}.go")}
        report = self.folder / f"{name}.json"
        while_paused = hooks.pop("while_paused", None)
        child = actors.start(actors.run_cycle_with_hooks, ["--config", str(self.config), "sync", NAME], self.url,
                             chunk_size, {**files, **hooks}, str(report))
        if while_paused is not None:
            assert actors.wait_for(Path(files["paused"]), child), "the cycle ended before it paused"
            while_paused()
            Path(files["go"]).touch()
        child.join(120)
        assert child.exitcode is not None, "the cycle did not end"
        commits_file = Path(files["commits"])
        commits = [json.loads(line) for line in commits_file.read_text().splitlines()] if commits_file.exists() else []
        return (json.loads(report.read_text()) if report.exists() else None), child.exitcode, commits

    def next_cycle(self) -> str:
        """The next cycle, once a killed cycle's lease has expired."""
        later = clock.now() + timedelta(seconds=self.settings.worker.lock_ttl_seconds + 1)
        with freeze_time(later, tick=True):
            return run_cycle(self.settings, NAME, store=self.store).status

    def admins(self) -> list[str]:
        with self.store.session() as session:
            exported = export_state(session)
        return next(g["members"] for g in exported["groups"] if g["name"] == "Administrators")

    def assert_swapped(self) -> None:
        assert self.admins() == [B]
        assert read_snapshot(self.store).admin_active == 1

    def assert_log(self) -> None:
        events, runs = read_log(self.store)
        assert replay_log(events, runs) == []
        closed = {i: r for i, r in runs.items() if r["status"] != "failed"}  # a killed run is closed failed
        assert run_accounting(events, closed) == []

    def close(self) -> None:
        self.store.dispose()


@pytest.fixture
def case(store_url: str, tmp_path: Path) -> Any:
    made = Case(store_url, tmp_path)
    yield made
    made.close()


def _never_empty(commits: list[dict[str, Any]]) -> None:
    assert commits, "no commit was observed"
    assert all(c["admin_active"] for c in commits), commits


def test_the_swap_in_many_chunks_never_empties_the_group(case: Case) -> None:
    add_b, remove_a = case.positions()
    assert add_b < remove_a  # adds before removes
    report, code, commits = case.sync_in_child(25, "whole")
    assert code == 0 and report is not None and report["code"] == 0, report
    assert len(commits) > remove_a // 25  # many chunks
    _never_empty(commits)
    case.assert_swapped()
    case.assert_log()


def _fresh_case(store_url: str, folder: Path) -> Case:
    """A new store in the swap-ready state (the same PostgreSQL database, emptied)."""
    folder.mkdir()
    if store_url.startswith("sqlite"):
        return Case(f"sqlite:///{folder / 'dirsync.db'}", folder)
    _empty_postgres(store_url)
    return Case(store_url, folder)


@pytest.mark.parametrize("chunking", ["boundary-between-add-and-remove", "every-100"])
def test_the_swap_killed_after_any_commit(store_url: str, tmp_path: Path, chunking: str) -> None:
    case = _fresh_case(store_url, tmp_path / "reference")
    add_b, remove_a = case.positions()
    # With chunks of `remove_a` operations, "add B" ends the first chunk and "remove A"
    # starts the second: the commit between them is the one that an order of removes
    # before adds would leave empty.
    chunk_size = remove_a if chunking.startswith("boundary") else 100
    _, code, commits = case.sync_in_child(chunk_size, "uninterrupted")
    case.close()
    assert code == 0
    assert len(commits) >= 2
    for kill_after in range(1, len(commits)):
        case = _fresh_case(store_url, tmp_path / f"kill-{kill_after}")
        try:
            report, code, seen = case.sync_in_child(chunk_size, "killed", kill_after=kill_after)
            assert code == -signal.SIGKILL and report is None, (kill_after, code, report)
            assert len(seen) == kill_after
            _never_empty(seen)
            assert read_snapshot(case.store).admin_active  # as the dead cycle left it
            assert case.next_cycle() == "succeeded"
            case.assert_swapped()
            case.assert_log()
        finally:
            case.close()


def test_a_failing_add_keeps_the_old_administrator(case: Case) -> None:
    """B's create comes in a later chunk than the first; between the two, an admin adds
    B's email by hand."""
    chunk_size = 50
    added: list[dict[str, Any]] = []

    def add_b_by_hand() -> None:
        report = case.folder / "add-user.json"
        child = actors.start(actors.run_cli, ["--config", str(case.config), "admin", "add-user", B], 0.0, str(report))
        child.join(60)
        added.append(json.loads(report.read_text()))

    report, code, commits = case.sync_in_child(chunk_size, "conflict", pause_after=1, while_paused=add_b_by_hand)
    assert added[0]["code"] == 0, added
    assert code == 0 and report is not None and report["code"] == 1, report  # partial
    _never_empty(commits)
    with case.store.session() as session:
        run = session.execute(select(sync_runs).order_by(sync_runs.c.id.desc()).limit(1)).one()._mapping
    assert run["status"] == "partial"
    events, _ = read_log(case.store)
    mine = [e for e in events if e["run_id"] == run["id"]]
    reasons = {(e["action"], e["target"]): (e["outcome"], e["reason"]) for e in mine}
    assert reasons[("create-user", B)] == ("conflict", "changed-since-planned")
    assert reasons[("remove-member", "Administrators")] == ("conflict", "admin-group-would-be-empty")
    assert case.admins() == [A]
    case.assert_log()
    # The next cycle links B (now a local user with B's email) and finishes the swap.
    assert case.next_cycle() == "succeeded"
    case.assert_swapped()
    case.assert_log()
