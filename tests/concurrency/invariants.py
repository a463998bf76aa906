"""The write-time promises (DESIGN §2a) as checks on what a store shows.

- `read_snapshot` / `Observation`: one consistent view of the store (one transaction,
  REPEATABLE READ on PostgreSQL, a WAL snapshot on SQLite), and the checks that need only
  successive views: R4 (once `Administrators` had an active member it always has one),
  no row ever disappears, and a row bound to a directory is only ever re-bound by that
  directory, or after an applied unlink of it.
- `replay_log`: every commit, from the provisioning log. Applied events are replayed in
  log order (writers of one row are serialised by its lock, so the log orders them as they
  committed): each applied change must start from the value the previous one left (no
  lost update), no directory links or unlinks a row another directory manages (no
  takeover), and no local admin action writes a managed row (R5).
- `run_accounting`: every run ended in a final status, and every operation and rejection
  of its plan has exactly one outcome event.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from store import Store
from store.models import groups, memberships, sync_events, sync_runs, users

FINAL_STATUSES = {"succeeded", "partial", "skipped", "halted", "aborted"}
UNLINKS = ("unlink-user", "unlink-group")
Binding = tuple[str | None, str | None]  # (managed_by, external_id)


@dataclass(frozen=True)
class Snapshot:
    users: dict[int, tuple[str, Binding, bool]]  # id -> (email key, binding, active)
    groups: dict[int, tuple[str, Binding]]  # id -> (name key, binding)
    admin_active: int | None  # active members of the reserved group; None: no such group
    unlinks: frozenset[int]  # ids of applied unlink events


def read_snapshot(store: Store) -> Snapshot:
    """The store as one transaction sees it."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            u, g = users.c, groups.c
            user_rows = {
                r.id: (r.email_key, (r.managed_by, r.external_id), bool(r.active))
                for r in conn.execute(select(u.id, u.email_key, u.managed_by, u.external_id, u.active))
            }
            group_rows = {
                r.id: (r.name_key, (r.managed_by, r.external_id))
                for r in conn.execute(select(g.id, g.name_key, g.managed_by, g.external_id))
            }
            admin = conn.execute(select(g.id).where(g.reserved.is_(True)).order_by(g.id).limit(1)).scalar()
            active = None
            if admin is not None:
                members = conn.execute(select(memberships.c.user_id).where(memberships.c.group_id == admin)).scalars()
                active = sum(1 for m in members if user_rows[m][2])
            e = sync_events.c
            unlinks = frozenset(
                conn.execute(select(e.id).where(e.action.in_(UNLINKS), e.outcome == "applied")).scalars()
            )
    return Snapshot(user_rows, group_rows, active, unlinks)


@dataclass
class Observation:
    """Successive snapshots and what was wrong between any two of them."""

    snapshots: int = 0
    admin_had_member: bool = False
    admin_min_active: int | None = None
    violations: list[str] = field(default_factory=list)
    last: Snapshot | None = None

    def see(self, now: Snapshot) -> None:
        self.snapshots += 1
        if now.admin_active:
            self.admin_had_member = True
        if now.admin_active is not None and self.admin_had_member:
            low = self.admin_min_active
            self.admin_min_active = now.admin_active if low is None else min(low, now.admin_active)
        if self.admin_had_member and not now.admin_active:
            self._violation(f"R4: Administrators has {now.admin_active} active members (snapshot {self.snapshots})")
        if self.last is not None:
            self._compare(self.last, now)
        self.last = now

    def _compare(self, before: Snapshot, now: Snapshot) -> None:
        unlinked = bool(now.unlinks - before.unlinks)
        for kind, old_rows, new_rows in (("user", before.users, now.users), ("group", before.groups, now.groups)):
            for row_id, old in old_rows.items():
                new = new_rows.get(row_id)
                if new is None:
                    self._violation(f"{kind} #{row_id} ({old[0]}) disappeared")
                    continue
                was, bound = old[1], new[1]
                if was == bound or was[0] is None:
                    continue
                if bound[0] == was[0]:
                    continue  # its own directory re-bound it (R7: a re-used email)
                if not unlinked:
                    self._violation(f"{kind} {old[0]} went from {was} to {bound} with no unlink committed")

    def _violation(self, text: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(text)

    def report(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots, "violations": self.violations,
                "admin_had_member": self.admin_had_member, "admin_min_active": self.admin_min_active}


# --- the provisioning log ---------------------------------------------------------------------


def read_log(store: Store) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Every event in log order, and every run by id."""
    with store.engine.connect() as conn:
        events = [dict(r._mapping) for r in conn.execute(select(sync_events).order_by(sync_events.c.id))]
        runs = {r.id: dict(r._mapping) for r in conn.execute(select(sync_runs))}
    return events, runs


@dataclass
class _Replay:
    binding: dict[tuple[str, str], Binding] = field(default_factory=dict)  # (kind, key) -> binding
    active: dict[str, bool] = field(default_factory=dict)
    members: dict[tuple[str, str], bool] = field(default_factory=dict)  # (group, email) -> member?
    problems: list[str] = field(default_factory=list)

    def problem(self, event: dict[str, Any], writer: str, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(f"event #{event['id']} {event['action']} {event['target']!r} by {writer}: {text}")


def replay_log(events: list[dict[str, Any]], runs: dict[int, dict[str, Any]]) -> list[str]:
    """What the log shows was wrong at any commit (see the module notes). The store must
    have started empty, so that every row's history is in the log."""
    state = _Replay()
    for event in events:
        if event["outcome"] != "applied":
            continue
        writer = runs[event["run_id"]]["directory"] if event["run_id"] is not None else "admin"
        _replay_one(state, event, writer)
    return state.problems


def _replay_one(state: _Replay, event: dict[str, Any], writer: str) -> None:
    action, kind = event["action"], event["kind"]
    old, new = event["old"] or {}, event["new"] or {}
    key = str(event["target"]).strip().lower()
    bound = state.binding.get((kind, key), (None, None))
    if action in ("create-user", "create-group"):
        if (kind, key) in state.binding:
            state.problem(event, writer, "created a row that exists")
        state.binding[(kind, key)] = (new.get("managed_by"), new.get("external_id"))
        if kind == "user":
            state.active[key] = bool(new.get("active", True))
    elif action in ("link-user", "link-group", "unlink-user", "unlink-group"):
        planned = (old.get("managed_by"), old.get("external_id"))
        if planned != bound:
            state.problem(event, writer, f"planned from binding {planned}, but the row was {bound} (lost update)")
        if bound[0] is not None and bound[0] != writer and not (writer == "admin" and action.startswith("unlink")):
            state.problem(event, writer, f"took over a row managed by {bound[0]}")
        state.binding[(kind, key)] = (new.get("managed_by"), new.get("external_id"))
    elif action in ("activate-user", "deactivate-user"):
        if writer == "admin" and bound[0] is not None:
            state.problem(event, writer, f"a local action wrote a row managed by {bound[0]} (R5)")
        if "active" in old and state.active.get(key) is not None and old["active"] != state.active[key]:
            state.problem(event, writer, f"planned from active={old['active']}, but it was {state.active[key]} (lost update)")
        state.active[key] = action == "activate-user"
    elif action in ("add-member", "remove-member"):
        group = state.binding.get(("group", key), (None, None))
        if writer == "admin" and group[0] is not None:
            state.problem(event, writer, f"a local action changed members of a group managed by {group[0]} (R5)")
        member = str(new.get("member") or old.get("member") or "").strip().lower()
        present = state.members.get((key, member), False)
        adding = action == "add-member"
        if present is adding:
            state.problem(event, writer, f"{'added' if adding else 'removed'} {member} who {'was' if present else 'was not'} a member (lost update)")
        state.members[(key, member)] = adding


def run_accounting(events: list[dict[str, Any]], runs: dict[int, dict[str, Any]]) -> list[str]:
    """Runs not in a final status, and runs whose events are not one per operation and
    rejection of the plan, each with its one outcome."""
    problems: list[str] = []
    by_run: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["run_id"] is not None:
            by_run[event["run_id"]].append(event)
    for run_id, run in sorted(runs.items()):
        status, counts, mine = run["status"], run["counts"] or {}, by_run.get(run_id, [])
        if status not in FINAL_STATUSES:
            problems.append(f"run {run_id} of {run['directory']} ended {status!r}: {run['error']}")
            continue
        if status == "skipped":
            if mine:
                problems.append(f"skipped run {run_id} has {len(mine)} events")
            continue
        seqs = [e["seq"] for e in mine]
        if len(seqs) != len(set(seqs)):
            problems.append(f"run {run_id}: an operation has more than one event")
        if status == "halted":
            continue  # staged, nothing applied: its plan is in the staged table
        planned = Counter({k: v for k, v in counts.items() if ":" not in k and v})
        logged = Counter(e["action"] if e["action"] != "reject" else "rejected" for e in mine)
        if planned != logged:
            problems.append(f"run {run_id} ({status}): plan {dict(planned)} but events {dict(logged)}")
        outcomes = Counter({k.removeprefix("outcome:"): v for k, v in counts.items() if k.startswith("outcome:") and v})
        if outcomes != Counter(e["outcome"] for e in mine):
            problems.append(f"run {run_id} ({status}): counts {dict(outcomes)} but event outcomes"
                            f" {dict(Counter(e['outcome'] for e in mine))}")
        unapplied = outcomes["failed"] + outcomes["conflict"]
        if status == "succeeded" and unapplied:
            problems.append(f"run {run_id} succeeded with {unapplied} failed or conflicting operations")
        if status == "partial" and not unapplied:
            problems.append(f"run {run_id} partial with nothing failed or conflicting")
    return problems


def conflict_reasons(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e["reason"]) for e in events if e["outcome"] == "conflict")
