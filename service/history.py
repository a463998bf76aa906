"""Runs and events: what happened, per run or per object, across runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from reconcile.rules import email_key, name_key
from store import Store
from store.models import SyncEvent, SyncRun

DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class EventView:
    """One operation's or rejection's outcome, with the run it belongs to."""

    id: int
    run_id: int | None
    directory: str | None
    seq: int
    at: datetime
    action: str
    kind: str
    target: str
    outcome: str
    reason: str | None
    detail: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events: all of one run, or across runs by object, action, outcome and time.
    Every field that is set must match."""

    run_id: int | None = None
    directory: str | None = None
    user: str | None = None
    group: str | None = None
    action: str | None = None
    outcome: str | None = None
    reason: str | None = None
    since: datetime | None = None


def events(store: Store, where: EventFilter, *, limit: int | None = DEFAULT_LIMIT,
           before_id: int | None = None) -> list[EventView]:
    """Matching events: of one run in its order (`seq`), else newest first. `before_id`
    continues a listing below the last id shown (keyset pagination)."""
    e, r = SyncEvent, SyncRun
    query = select(e, r.directory).outerjoin(r, r.id == e.run_id)
    if where.run_id is not None:
        query = query.where(e.run_id == where.run_id).order_by(e.seq, e.id)
    else:
        query = query.order_by(e.id.desc())
    if where.directory is not None:
        query = query.where(r.directory == where.directory)
    if where.user is not None:
        query = query.where(e.user_key == email_key(where.user))
    if where.group is not None:
        query = query.where(e.group_key == name_key(where.group))
    if where.action is not None:
        query = query.where(e.action == where.action)
    if where.outcome is not None:
        query = query.where(e.outcome == where.outcome)
    if where.reason is not None:
        query = query.where(e.reason == where.reason)
    if where.since is not None:
        query = query.where(e.at >= where.since)
    if before_id is not None:
        query = query.where(e.id < before_id)
    if limit is not None:
        query = query.limit(limit)
    with store.session() as session:
        return [_view(event, directory) for event, directory in session.execute(query)]


def run_exists(store: Store, run_id: int) -> bool:
    with store.session() as session:
        return session.get(SyncRun, run_id) is not None


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    directory: str
    trigger: str
    mode: str
    dry_run: bool
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    error: str | None
    allow_deactivations: bool

    @property
    def is_noop(self) -> bool:
        """Nothing applied, nothing rejected, nothing staged or failed."""
        interesting = ("outcome:applied", "outcome:failed", "outcome:conflict", "rejected")
        return self.status in ("succeeded", "skipped") and not any(self.counts.get(k) for k in interesting)


def runs(store: Store, *, directory: str | None = None, status: Sequence[str] = (), hide_noop: bool = False,
         limit: int = 20) -> list[RunView]:
    """The newest runs (of `directory`, with one of `status`), newest first; `hide_noop`
    leaves out runs that changed nothing."""
    query = select(SyncRun).order_by(SyncRun.id.desc())
    if directory is not None:
        query = query.where(SyncRun.directory == directory)
    if status:
        query = query.where(SyncRun.status.in_(list(status)))
    out: list[RunView] = []
    with store.session() as session:
        # No-op runs are filtered after reading (their counts are JSON): read in pages.
        offset = 0
        while len(out) < limit:
            page = list(session.scalars(query.offset(offset).limit(max(limit, 200))))
            if not page:
                break
            offset += len(page)
            for row in page:
                view = _run_view(row)
                if not (hide_noop and view.is_noop):
                    out.append(view)
    return out[:limit]


def _run_view(run: SyncRun) -> RunView:
    return RunView(run.id, run.directory, run.trigger, run.mode, run.dry_run, run.status, run.started_at,
                   run.finished_at, dict(run.counts or {}), run.error, run.allow_deactivations)


def _view(event: SyncEvent, directory: str | None) -> EventView:
    return EventView(event.id, event.run_id, directory, event.seq, event.at, event.action, event.kind, event.target,
                     event.outcome, event.reason, event.detail, event.old, event.new)
