"""The provisioning log of SCIM writes: each directory's requests of one hour are one run
(trigger `scim`), each request's operations its events (detail: "POST /Users" ...).

A run's status is `succeeded` until a request of it is refused at write time (then
`partial`); its counts add up every request's outcomes, written at most once a second
per process (and when the app stops): the events are the record, the counts a summary.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from config import Settings
from reconcile import clock
from reconcile.apply import ApplyResult
from reconcile.model import Plan
from reconcile.push import Problem
from store import RunStatus, Store, SyncRun, start_run
from store.push import directory_generation, reading

TRIGGER = "scim"
MODE = "push"

# store -> (directory, hour) -> run id: one lookup per hour, not per request.
_runs: weakref.WeakKeyDictionary[Store, dict[tuple[str, datetime], int]] = weakref.WeakKeyDictionary()

ApplyPlan = Callable[[Store, Plan, int, int, str], ApplyResult]


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def hourly_run(store: Store, directory: str, at: datetime | None = None) -> int:
    """The id of `directory`'s `scim` run for the hour of `at`, started if need be."""
    hour = _hour(at or clock.now())
    known = _runs.setdefault(store, {})
    key = (directory, hour)
    if key in known:
        return known[key]
    with store.session(write=True) as session:
        run_id = session.execute(
            select(SyncRun.id).where(SyncRun.directory == directory, SyncRun.trigger == TRIGGER,
                                     SyncRun.started_at >= hour, SyncRun.status != RunStatus.HALTED.value)
            .order_by(SyncRun.id).limit(1)
        ).scalar()
        if run_id is None:
            run_id = start_run(session, directory=directory, trigger=TRIGGER, mode=MODE,
                               status=RunStatus.SUCCEEDED, at=hour)
    known[key] = int(run_id)
    return int(run_id)


def apply_request(store: Store, directory: str, plan: Plan, request: str, *, apply_plan: ApplyPlan) -> ApplyResult:
    """Apply one request's plan in the hour's run, at the directory's current generation
    (a disable that overtakes the request stops it), and add its outcomes to the run."""
    with reading(store) as conn:
        generation = directory_generation(conn, directory)
    if generation is None:
        raise Problem(401, f"directory {directory!r} is disabled")
    run_id = hourly_run(store, directory)
    result = apply_plan(store, plan, run_id, generation, request)
    _tally(store, run_id, result)
    return result


@dataclass
class _Tally:
    """Outcomes not yet added to a run's row: written at most once a second (the events,
    committed with the writes, are the record; the run's counts summarise them)."""

    counts: Counter[str] = field(default_factory=Counter)
    partial: bool = False
    flushed_at: float = 0.0


_tallies: weakref.WeakKeyDictionary[Store, dict[int, _Tally]] = weakref.WeakKeyDictionary()
_tally_lock = threading.Lock()
FLUSH_SECONDS = 1.0


def _tally(store: Store, run_id: int, result: ApplyResult) -> None:
    with _tally_lock:
        tally = _tallies.setdefault(store, {}).setdefault(run_id, _Tally())
        tally.counts.update({k: n for k, n in result.counts().items() if n})
        tally.partial = tally.partial or bool(result.failed or result.conflicts)
        due = time.monotonic() - tally.flushed_at >= FLUSH_SECONDS
    if due:
        flush_counts(store)


def flush_counts(store: Store) -> None:
    """Add every pending tally to its run's row (also called when the app stops)."""
    with _tally_lock:
        pending = {run_id: t for run_id, t in _tallies.get(store, {}).items() if t.counts or t.partial}
        taken = {run_id: (Counter(t.counts), t.partial) for run_id, t in pending.items()}
        for tally in pending.values():
            tally.counts.clear()
            tally.partial = False
            tally.flushed_at = time.monotonic()
    for run_id, (counts, partial) in taken.items():
        with store.session(write=True) as session:
            run = session.execute(select(SyncRun).where(SyncRun.id == run_id).with_for_update()).scalar_one_or_none()
            if run is None:
                continue
            merged = Counter(run.counts or {})
            merged.update(counts)
            run.counts = dict(sorted(merged.items()))
            run.finished_at = clock.now()
            if partial:
                run.status = RunStatus.PARTIAL.value


def hold_deactivations(settings: Settings, store: Store, directory: str, plan: Plan, request: str) -> None:
    """S2 for push (see `service.scim_hold`); a no-op until the limit applies."""
    from service.scim_hold import hold_if_over_limit

    hold_if_over_limit(settings, store, directory, plan, request)
