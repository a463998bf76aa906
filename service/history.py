"""Runs and events: what happened, per run or per object, across runs."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.orm import Session

from reconcile.model import Action
from reconcile.rules import email_key, name_key
from store import Outcome, Store
from store.events import REJECT_ACTION
from store.models import Directory, SyncEvent, SyncRun, sync_events

DEFAULT_LIMIT = 100
PAGE_SIZE = 50

# What the log can be filtered by: every action an event records, and every outcome.
ACTIONS: tuple[str, ...] = (*(a.value for a in Action), REJECT_ACTION)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


class BadFilter(ValueError):
    """A filter or cursor that cannot be used; the message is fit to show an operator."""


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
    user_key: str | None = None
    group_key: str | None = None
    actor: str | None = None  # the person whose action the run was (console admin), if any


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events: all of one run, or across runs by object, action, outcome and time
    (`since` inclusive, `until` exclusive). Every field that is set must match."""

    run_id: int | None = None
    directory: str | None = None
    user: str | None = None
    group: str | None = None
    action: str | None = None
    outcome: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of the log, newest first. `older` and `newer` are opaque cursors to the
    neighbouring pages (None: there is none); pass one back as `older_than` or `newer_than`."""

    events: tuple[EventView, ...]
    older: str | None
    newer: str | None


def events(store: Store, where: EventFilter, *, limit: int | None = DEFAULT_LIMIT) -> list[EventView]:
    """Matching events: of one run in its order (`seq`), else newest first (the log's
    first page, `event_page`)."""
    if where.run_id is None:
        return list(event_page(store, where, limit=limit).events)
    e = SyncEvent
    with store.session() as session:
        query = _matching(session, where).order_by(e.seq, e.id)
        if limit is not None:
            query = query.limit(limit)
        return [_view(event, directory, actor) for event, directory, actor in session.execute(query)]


def event_page(store: Store, where: EventFilter, *, limit: int | None = PAGE_SIZE, older_than: str | None = None,
               newer_than: str | None = None) -> EventPage:
    """A page of matching events across runs, newest first by `(at, id)`: the newest ones,
    or those just older than the cursor `older_than`, or just newer than `newer_than`.

    Keyset pagination (no OFFSET): a page costs the same however deep it is, and events
    written while someone pages land above the first page, never shifting the others, so
    walking `older` shows every event once. A `newer` walk that reaches the top shows the
    newest page. Raises BadFilter for a cursor this function did not make.
    """
    e = SyncEvent
    key = tuple_(e.at, e.id)
    with store.session() as session:
        query = _matching(session, where)
        newest_first = query.order_by(e.at.desc(), e.id.desc())
        if newer_than is not None:
            at, event_id = _decode(newer_than)
            above = _fetch(session, query.where(key > tuple_(_at(at), event_id)).order_by(e.at, e.id), limit)
            if limit is not None and len(above) > limit:
                rows = above[:limit][::-1]
                return EventPage(tuple(rows), _encode(rows[-1]), _encode(rows[0]))
            older_than = None  # reached the top: show the newest page
        if older_than is not None:
            at, event_id = _decode(older_than)
            rows = _fetch(session, newest_first.where(key < tuple_(_at(at), event_id)), limit)
            newer = _encode(rows[0]) if rows else older_than
        else:
            rows = _fetch(session, newest_first, limit)
            newer = None
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    return EventPage(tuple(rows), _encode(rows[-1]) if more else None, newer)


# SQLite: a directory with at most this many events is listed from its runs' events,
# sorted; a bigger one by walking the log newest first until a page of its events is found.
SMALL_DIRECTORY_EVENTS = 20_000


def _matching(session: Session, where: EventFilter) -> Select[SyncEvent, str | None, str | None]:
    e, r = SyncEvent, SyncRun
    query = select(e, r.directory, r.actor).outerjoin(r, r.id == e.run_id)
    if where.run_id is not None:
        query = query.where(e.run_id == where.run_id)
    if where.directory is not None:
        runs_of = select(r.id).where(r.directory == where.directory).scalar_subquery()
        query = query.where((e.run_id if _by_run(session, runs_of) else e.run_id + 0).in_(runs_of))
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
    if where.until is not None:
        query = query.where(e.at < where.until)
    return query


def _by_run(session: Session, runs_of: Any) -> bool:
    """Whether a directory's events are best found through the run index (then sorted)
    rather than by walking the log by time. PostgreSQL's planner decides from its
    statistics. SQLite has none: left alone it sorts all of a big directory's events for
    each page (a second at a million), or walks the whole log for a directory of a few
    events; so count them, stopping one past the limit. `run_id + 0` keeps the index out."""
    if session.get_bind().dialect.name != "sqlite":
        return True
    e = SyncEvent
    bounded = select(e.id).where(e.run_id.in_(runs_of)).limit(SMALL_DIRECTORY_EVENTS + 1).subquery()
    return int(session.execute(select(func.count()).select_from(bounded)).scalar_one()) <= SMALL_DIRECTORY_EVENTS


def _fetch(session: Session, query: Select[SyncEvent, str | None, str | None], limit: int | None) -> list[EventView]:
    """Up to `limit + 1` rows: the one past the page says whether another page follows."""
    if limit is not None:
        query = query.limit(limit + 1)
    return [_view(event, directory, actor) for event, directory, actor in session.execute(query)]


def _at(value: datetime) -> Any:
    """A cursor's time bound with the column's type (aware UTC in, the backend's form out)."""
    return literal(value, sync_events.c.at.type)


def _encode(event: EventView) -> str:
    raw = f"{event.at.astimezone(UTC).isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Ids are 64-bit signed integers in both stores: a bigger number names no row.
MAX_ID = 2**63 - 1


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, event_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not 0 <= int(event_id) <= MAX_ID:
            raise ValueError(at)
        return when, int(event_id)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise BadFilter("this page link is not valid (it may be cut short): start again from the newest events") \
            from exc


def directory_names(store: Store) -> list[str]:
    """The directories the store has rows for (configured ones may have none yet)."""
    with store.session() as session:
        return list(session.scalars(select(Directory.name).order_by(Directory.name)))


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


def _view(event: SyncEvent, directory: str | None, actor: str | None) -> EventView:
    return EventView(event.id, event.run_id, directory, event.seq, event.at, event.action, event.kind, event.target,
                     event.outcome, event.reason, event.detail, event.old, event.new, event.user_key, event.group_key,
                     actor)
