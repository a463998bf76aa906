"""Runs: what each cycle did, as one row per run, with its events (`store.events`).

A run row is written when a cycle starts (`start_run`) and closed by `finish_run`.
Functions work in the caller's session and do not commit, except where
`reconcile.apply` says otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from reconcile import clock
from store.engine import StoreError
from store.events import insert_events
from store.models import Outcome, RunMode, RunStatus, StagedPlan, SyncEvent, SyncRun


def start_run(
    session: Session,
    *,
    directory: str,
    trigger: str,
    mode: RunMode | str,
    dry_run: bool = False,
    allow_deactivations: bool = False,
    status: RunStatus | str = RunStatus.RUNNING,
    at: datetime | None = None,
    actor: str | None = None,
) -> int:
    """Insert a run row (status `running` unless told) and return its id. `actor`: the
    person who asked for it (a console admin's email), when one did."""
    run = SyncRun(
        directory=directory,
        trigger=trigger,
        actor=actor,
        mode=_text(mode),
        dry_run=dry_run,
        allow_deactivations=allow_deactivations,
        status=_text(status),
        started_at=at or clock.now(),
        counts={},
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session,
    run_id: int,
    status: RunStatus | str,
    counts: Mapping[str, int] | None = None,
    error: str | None = None,
    *,
    at: datetime | None = None,
    mode: RunMode | str | None = None,
) -> SyncRun:
    """Close run `run_id` with its final status, counts and error text; `mode` when the run
    read otherwise than it started to (an incremental cycle that had to read in full)."""
    run = get_run(session, run_id)
    if run is None:
        raise StoreError(f"run {run_id} does not exist")
    if mode is not None:
        run.mode = _text(mode)
    run.status = _text(status)
    run.finished_at = at or clock.now()
    if counts is not None:
        run.counts = dict(sorted(counts.items()))
    run.error = error
    session.flush()
    return run


# The kind of the event an admin run records about its directory.
DIRECTORY_KIND = "directory"


def record_admin_action(
    session: Session,
    *,
    directory: str,
    action: str,
    actor: str | None,
    trigger: str,
    detail: str,
    target: str | None = None,
    at: datetime | None = None,
) -> int:
    """Record one action a person took on `directory` as a finished run of mode `admin`
    (status succeeded) with one event (kind `directory`, outcome `applied`) saying what;
    the run id, for the events of any operations the action applies (they follow it)."""
    when = at or clock.now()
    run_id = start_run(session, directory=directory, trigger=trigger, mode=RunMode.ADMIN,
                       status=RunStatus.SUCCEEDED, at=when, actor=actor)
    run = get_run(session, run_id)
    assert run is not None
    run.finished_at = when
    run.counts = {action: 1}
    insert_events(session, [{
        "run_id": run_id, "seq": 1, "action": action, "kind": DIRECTORY_KIND, "target": target or directory,
        "outcome": Outcome.APPLIED.value, "reason": None, "detail": detail, "old": None, "new": None,
        "at": when, "user_key": None, "group_key": None,
    }])
    return run_id


INTERRUPTED = "interrupted: the process running this cycle stopped before it ended"


def close_interrupted_runs(session: Session, directory: str, at: datetime | None = None) -> int:
    """Mark `directory`'s runs still `running` as failed. Call only while holding the
    directory's cycle lock: then no live cycle can own such a row."""
    done = session.execute(
        update(SyncRun)
        .where(SyncRun.directory == directory, SyncRun.status == RunStatus.RUNNING.value)
        .values(status=RunStatus.FAILED.value, finished_at=at or clock.now(), error=INTERRUPTED)
    )
    return int(getattr(done, "rowcount", 0) or 0)


# Runs retention never deletes: `running` ones belong to a live cycle (or wait for
# `close_interrupted_runs`).
KEPT_STATUSES = (RunStatus.RUNNING.value,)


def prune_runs(session: Session, *, before: datetime) -> tuple[int, int]:
    """Delete runs started before `before`, and their events; `(runs, events)` deleted.

    Promise: the newest run of every directory stays (and its newest one that was not
    `skipped`, which `dirsync status` shows), and so does every run in `KEPT_STATUSES` and
    every run a staged plan belongs to (open or decided: the plans are kept); events
    without a run (local admin actions) stay.
    """
    cycles = SyncRun.mode != RunMode.ADMIN.value  # what status shows is the newest cycle, not an admin action
    newest = select(func.max(SyncRun.id)).where(cycles).group_by(SyncRun.directory)
    newest_ran = (
        select(func.max(SyncRun.id)).where(SyncRun.status != RunStatus.SKIPPED.value, cycles)
        .group_by(SyncRun.directory)
    )
    doomed = select(SyncRun.id).where(
        SyncRun.started_at < before,
        SyncRun.status.not_in(KEPT_STATUSES),
        SyncRun.id.not_in(newest),
        SyncRun.id.not_in(newest_ran),
        SyncRun.id.not_in(select(StagedPlan.run_id)),
    )
    events = session.execute(delete(SyncEvent).where(SyncEvent.run_id.in_(doomed)))
    runs = session.execute(delete(SyncRun).where(SyncRun.id.in_(doomed)))
    session.flush()
    return int(getattr(runs, "rowcount", 0) or 0), int(getattr(events, "rowcount", 0) or 0)


def get_run(session: Session, run_id: int) -> SyncRun | None:
    return session.get(SyncRun, run_id)


def list_runs(session: Session, *, directory: str | None = None, limit: int = 20) -> list[SyncRun]:
    """The newest `limit` runs (of `directory`, or of all), newest first."""
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if directory is not None:
        query = query.where(SyncRun.directory == directory)
    return list(session.scalars(query))


def list_events(
    session: Session, run_id: int | None, *, limit: int | None = None
) -> list[SyncEvent]:
    """The events of run `run_id` by `seq` (`None`: local admin actions, oldest first)."""
    if run_id is None:
        query = select(SyncEvent).where(SyncEvent.run_id.is_(None)).order_by(SyncEvent.id)
    else:
        query = select(SyncEvent).where(SyncEvent.run_id == run_id).order_by(SyncEvent.seq, SyncEvent.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def _text(value: str) -> str:
    return str(value.value) if isinstance(value, enum.Enum) else value
