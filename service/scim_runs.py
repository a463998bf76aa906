"""The provisioning log of SCIM writes: each directory's requests of one hour are one run
(trigger `scim`), each request's operations its events (detail: "POST /Users" ...).

A run's status is `succeeded` until a request of it is refused at write time (then
`partial`); its counts add up every request's outcomes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from config import Settings
from reconcile import clock
from reconcile.apply import ApplyResult
from reconcile.model import Plan
from reconcile.push import Problem
from store import RunStatus, Store, SyncRun, get_directory, start_run

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
                                     SyncRun.started_at >= hour).order_by(SyncRun.id).limit(1)
        ).scalar()
        if run_id is None:
            run_id = start_run(session, directory=directory, trigger=TRIGGER, mode=MODE,
                               status=RunStatus.SUCCEEDED, at=hour)
    known[key] = int(run_id)
    return int(run_id)


def apply_request(store: Store, directory: str, plan: Plan, request: str, *, apply_plan: ApplyPlan) -> ApplyResult:
    """Apply one request's plan in the hour's run, at the directory's current generation
    (a disable that overtakes the request stops it), and add its outcomes to the run."""
    with store.session() as session:
        row = get_directory(session, directory)
        if row is None or not row.enabled:
            raise Problem(401, f"directory {directory!r} is disabled")
        generation = row.generation
    run_id = hourly_run(store, directory)
    result = apply_plan(store, plan, run_id, generation, request)
    _add_counts(store, run_id, result)
    return result


def _add_counts(store: Store, run_id: int, result: ApplyResult) -> None:
    with store.session(write=True) as session:
        run = session.execute(select(SyncRun).where(SyncRun.id == run_id).with_for_update()).scalar_one_or_none()
        if run is None:
            return
        counts = dict(run.counts or {})
        for name, n in result.counts().items():
            if n:
                counts[name] = counts.get(name, 0) + n
        run.counts = dict(sorted(counts.items()))
        run.finished_at = clock.now()
        if result.failed or result.conflicts:
            run.status = RunStatus.PARTIAL.value


def hold_deactivations(settings: Settings, store: Store, directory: str, plan: Plan, request: str) -> None:
    """S2 for push (see `service.scim_hold`); a no-op until the limit applies."""
    from service.scim_hold import hold_if_over_limit

    hold_if_over_limit(settings, store, directory, plan, request)
