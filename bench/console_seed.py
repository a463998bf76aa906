"""A big store for the console benchmark, written in bulk (no planning, no apply).

`seed(store, users=100_000, groups=2_000, events=1_000_000)` fills an empty, migrated
store with what months of cycles would leave behind: four directories (Okta and Entra
with most users, a small HR file and a small SCIM app), their users, groups and
memberships (each user in two groups, and each directory's first group holding all its
users), each directory's first full cycle (a create event per user and group, an
add-member per membership), then a cycle every 40 minutes per directory over 60 days
whose events (updates, membership changes, deactivations, rejections with their reason
codes, now and then a staged, conflicting or failed operation) fill up to `events`.
Deterministic (seeded), so two runs build the same store.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from reconcile.rules import email_key, name_key
from store import Store
from store.bulk import insert_many
from store.models import directories, groups, memberships, sync_events, sync_runs, users

START = datetime(2026, 9, 1, tzinfo=UTC)
CYCLE = timedelta(minutes=40)
CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class Dir:
    name: str
    kind: str
    share: float  # of users, groups and later events


DIRECTORIES = (Dir("okta", "okta", 0.60), Dir("entra", "entra", 0.378), Dir("hr", "file", 0.02),
               Dir("app", "scim", 0.002))

# Later cycles' events: (action, kind, outcome, reason, weight).
_LATER = (
    ("update-user", "user", "applied", None, 34),
    ("add-member", "membership", "applied", None, 20),
    ("remove-member", "membership", "applied", None, 14),
    ("deactivate-user", "user", "applied", "left-scope", 3),
    ("deactivate-user", "user", "applied", "disabled-in-idp", 2),
    ("activate-user", "user", "applied", None, 2),
    ("reject", "user", "rejected", "invalid-email", 4),
    ("reject", "membership", "rejected", "unknown-member", 9),
    ("reject", "group", "rejected", "name-too-long", 2),
    ("rename-group", "group", "applied", None, 1),
    ("update-user", "user", "noop", None, 1),
    ("deactivate-user", "user", "staged", "left-scope", 1),
    ("update-user", "user", "conflict", "changed-since-planned", 0.5),
    ("add-member", "membership", "failed", "write-failed", 0.05),
)


def user_email(n: int) -> str:
    return f"user{n}@example.com"


def group_name(n: int) -> str:
    return f"Team {n:04d}"


def _slices(total: int) -> list[range]:
    """Each directory's part of `total` objects, in DIRECTORIES order (at least one each)."""
    sizes = [max(1, round(total * d.share)) for d in DIRECTORIES[1:]]
    sizes.insert(0, total - sum(sizes))
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [range(start, start + size) for start, size in zip(starts, sizes)]


def seed(store: Store, *, n_users: int, n_groups: int, n_events: int, seed_value: int = 13) -> dict[str, Any]:
    """Fill the store; returns facts the benchmark asks about (a busy user, a big group...)."""
    rng = random.Random(seed_value)
    user_slices, group_slices = _slices(n_users), _slices(n_groups)
    # group -> users: each user in two groups of its directory, and the first group of
    # each directory holds all of its users (an "everyone" group).
    members: dict[int, list[int]] = {}
    for users_of, groups_of in zip(user_slices, group_slices):
        members[groups_of[0]] = list(users_of)
        for u in users_of:
            for g in rng.sample(groups_of[1:], min(2, len(groups_of) - 1)):
                members.setdefault(g, []).append(u)
    with store.engine.begin() as conn:
        conn.execute(insert(directories), [
            {"name": d.name, "kind": d.kind, "settings": {}, "enabled": True, "generation": 0,
             "consecutive_failures": 0, "auth_failure": False, "created_at": START, "updated_at": START,
             "last_run_at": START, "last_success_at": START, "last_full_sync_at": START}
            for d in DIRECTORIES])
        for chunk in _chunks((
                {"id": u + 1, "email": user_email(u), "email_key": email_key(user_email(u)), "given_name": "User",
                 "family_name": str(u), "display_name": f"User {u}", "active": True, "managed_by": d.name,
                 "external_id": f"{d.name}-u{u}", "scim_id": None, "created_at": START, "updated_at": START}
                for d, users_of in zip(DIRECTORIES, user_slices) for u in users_of)):
            insert_many(conn, users, chunk)
        insert_many(conn, groups, [
            {"id": g + 1, "name": group_name(g), "name_key": name_key(group_name(g)), "managed_by": d.name,
             "external_id": f"{d.name}-g{g}", "reserved": False, "scim_id": None, "created_at": START,
             "updated_at": START}
            for d, groups_of in zip(DIRECTORIES, group_slices) for g in groups_of])
        for chunk in _chunks({"group_id": g + 1, "user_id": u + 1} for g, us in members.items() for u in us):
            insert_many(conn, memberships, chunk)
    written = _events(store, rng, user_slices, group_slices, members, n_events)
    if store.engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
        with store.engine.begin() as conn:
            for table in ("users", "groups", "sync_runs"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
    return {"events": written, "memberships": sum(map(len, members.values())),
            "user": user_email(user_slices[0][len(user_slices[0]) // 2]), "group": group_name(group_slices[0][1]),
            "big_group": group_name(group_slices[0][0]), "big_group_members": len(user_slices[0]),
            "small_directory": DIRECTORIES[-1].name, "first_run": 1}


def _events(store: Store, rng: random.Random, user_slices: list[range], group_slices: list[range],
            members: dict[int, list[int]], n_events: int) -> int:
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    written = 0

    def flush(conn: Any) -> None:
        nonlocal written
        if runs:
            conn.execute(insert(sync_runs), runs)
        insert_many(conn, sync_events, rows)
        written += len(rows)
        runs.clear()
        rows.clear()

    def event(run: int, seq: int, at: datetime, action: str, kind: str, target: str, outcome: str,
              reason: str | None, user: str | None, group: str | None, old: Any = None, new: Any = None) -> None:
        rows.append({"run_id": run, "seq": seq, "action": action, "kind": kind, "target": target,
                     "outcome": outcome, "reason": reason, "detail": None, "old": old, "new": new, "at": at,
                     "user_key": email_key(user) if user else None, "group_key": name_key(group) if group else None})

    run_id = 0
    with store.engine.begin() as conn:
        # First full cycles: everything created, one directory after the other.
        at = START
        for d, users_of, groups_of in zip(DIRECTORIES, user_slices, group_slices):
            run_id += 1
            runs.append(_run(run_id, d.name, "full", at, "succeeded"))
            seq = 0
            for u in users_of:
                seq += 1
                email = user_email(u)
                event(run_id, seq, at, "create-user", "user", email, "applied", None, email, None,
                      new={"email": email, "given_name": "User", "family_name": str(u), "active": True})
            for g in groups_of:
                seq += 1
                event(run_id, seq, at, "create-group", "group", group_name(g), "applied", None, None, group_name(g),
                      new={"name": group_name(g)})
                for u in members.get(g, ()):
                    seq += 1
                    event(run_id, seq, at, "add-member", "membership", group_name(g), "applied", None,
                          user_email(u), group_name(g), new={"member": user_email(u)})
                if len(rows) >= CHUNK:
                    flush(conn)
            at += timedelta(minutes=10)
        flush(conn)

        # Later cycles: every 40 minutes per directory for 60 days, events spread by share.
        cycles = int(timedelta(days=60) / CYCLE)
        left = max(0, n_events - written)
        weights = [w for *_, w in _LATER]
        for c in range(cycles):
            for i, (d, users_of, groups_of) in enumerate(zip(DIRECTORIES, user_slices, group_slices)):
                run_id += 1
                at = START + timedelta(hours=2) + c * CYCLE + i * timedelta(minutes=3)
                quota = left * d.share / cycles
                count = int(quota) + (1 if rng.random() < quota - int(quota) else 0)
                picks = rng.choices(_LATER, weights, k=count)
                status = "halted" if any(p[2] == "staged" for p in picks) else \
                    "partial" if any(p[2] in ("conflict", "failed") for p in picks) else "succeeded"
                runs.append(_run(run_id, d.name, "incremental", at, status, count))
                for seq, (action, kind, outcome, reason, _) in enumerate(picks, 1):
                    user = user_email(rng.choice(users_of))
                    group = group_name(rng.choice(groups_of))
                    when = at + timedelta(milliseconds=seq)
                    if kind == "membership":
                        event(run_id, seq, when, action, kind, group, outcome, reason, user, group,
                              new={"member": user})
                    elif kind == "group":
                        event(run_id, seq, when, action, kind, group, outcome, reason, None, group)
                    else:
                        event(run_id, seq, when, action, kind, user, outcome, reason, user, None,
                              old={"family_name": "Old"}, new={"family_name": "New"})
                if len(rows) >= CHUNK:
                    flush(conn)
        flush(conn)
    return written


def _run(run_id: int, directory: str, mode: str, at: datetime, status: str, count: int = 0) -> dict[str, Any]:
    return {"id": run_id, "directory": directory, "trigger": "beat", "mode": mode, "dry_run": False,
            "status": status, "started_at": at, "finished_at": at + timedelta(seconds=2 + count // 50),
            "counts": {"outcome:applied": count} if count else {}, "error": None, "allow_deactivations": False}


def _chunks(rows: Iterator[dict[str, Any]] | Any) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
