"""The `directories` rows: sync switch, watermark and health of each configured directory.

Every function works inside the caller's session and does not commit (the session's
owner does). Rows returned stay usable after the session closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reconcile import clock
from store.engine import StoreError
from store.models import Directory, directories


def get_directory(session: Session, name: str) -> Directory | None:
    """The row for `name`, or None when the directory has never been seen."""
    return session.scalars(select(Directory).where(Directory.name == name)).one_or_none()


def require_directory(session: Session, name: str) -> Directory:
    """The row for `name`; `StoreError` when there is none."""
    row = get_directory(session, name)
    if row is None:
        raise StoreError(f"directory {name!r} is not in the store")
    return row


def list_directories(session: Session) -> list[Directory]:
    """Every directory row, by name."""
    return list(session.scalars(select(Directory).order_by(Directory.name)))


def ensure_directory(
    session: Session, name: str, kind: str, settings: Mapping[str, Any] | None = None
) -> Directory:
    """The row for `name`, created (enabled) if missing. `kind` and, when given, the
    non-secret `settings` are refreshed on an existing row."""
    row = get_directory(session, name)
    if row is None:
        # Two processes may see it missing at once (the first cycles of a new directory):
        # insert unless present, then read whichever row won.
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        at = clock.now()
        session.execute(insert(directories).values(
            name=name, kind=kind, settings=dict(settings or {}), enabled=True, generation=0, watermark=None,
            consecutive_failures=0, auth_failure=False, created_at=at, updated_at=at,
        ).on_conflict_do_nothing(index_elements=[directories.c.name]))
        row = require_directory(session, name)
    row.kind = kind
    if settings is not None:
        row.settings = dict(settings)
    session.flush()
    return row


def set_enabled(session: Session, name: str, enabled: bool) -> Directory:
    """Switch sync on or off for `name` (the R8 conversions are the planner's job). Each
    switch starts a new generation: writers that started before it stop writing."""
    row = require_directory(session, name)
    # Locked and read again: a cycle's bookkeeping committed since the row was first read
    # (its watermark) is seen, and a write of the caller's stale copy cannot keep it.
    session.refresh(row, with_for_update=True)
    row.enabled = enabled
    row.generation = (row.generation or 0) + 1
    session.flush()
    return row


def _still_current(session: Session, name: str, generation: int | None, values: Mapping[str, Any]) -> bool:
    """Write `values` to `name`'s row only while it is enabled at `generation` (a cycle's
    bookkeeping must not undo a disable that happened while it ran). One conditional
    UPDATE: on PostgreSQL it re-checks the condition after waiting for a concurrent switch."""
    stmt = update(directories).where(directories.c.name == name)
    if generation is not None:
        stmt = stmt.where(directories.c.generation == generation, directories.c.enabled.is_(True))
    done = session.execute(stmt.values(**values))
    session.expire_all()
    return bool(getattr(done, "rowcount", 0))


def record_run_started(session: Session, name: str, *, at: datetime | None = None) -> None:
    """Note that a cycle of `name` started (`last_run_at`), for the schedule."""
    row = require_directory(session, name)
    row.last_run_at = at or clock.now()
    session.flush()


def record_success(
    session: Session,
    name: str,
    *,
    watermark: str | None,
    full: bool,
    at: datetime | None = None,
    generation: int | None = None,
) -> Directory:
    """A cycle of `name` succeeded: store its watermark, note the time (and that it was a
    full sync when `full`), and clear the failure streak and quarantine. With
    `generation`, nothing is written unless the directory is still enabled at it."""
    require_directory(session, name)
    when = at or clock.now()
    values: dict[str, Any] = {
        "watermark": watermark, "watermark_at": when, "last_success_at": when,
        "consecutive_failures": 0, "auth_failure": False, "updated_at": when,
    }
    if full:
        values["last_full_sync_at"] = when
    _still_current(session, name, generation, values)
    return require_directory(session, name)


# Runs started by a person (at a shell, or in the console): their failures are theirs to
# see, not the schedule's business (a mistyped token must not pause the daemon for an hour).
MANUAL_TRIGGERS = frozenset({"cli", "console"})


def record_failure(
    session: Session,
    name: str,
    *,
    error: str,
    auth: bool = False,
    at: datetime | None = None,
    generation: int | None = None,
    trigger: str | None = None,
) -> Directory:
    """A cycle of `name` failed (or ended partial): keep the error text and, unless
    `trigger` is a manual one (`MANUAL_TRIGGERS`), count it towards quarantine; `auth`
    marks an authentication failure (quarantine at once). The watermark is left alone.
    With `generation`, nothing is written unless the directory is still enabled at it."""
    require_directory(session, name)
    when = at or clock.now()
    values: dict[str, Any] = {"last_error": error, "updated_at": when}
    if trigger not in MANUAL_TRIGGERS:
        values.update(consecutive_failures=directories.c.consecutive_failures + 1, last_failure_at=when,
                      auth_failure=auth)
    _still_current(session, name, generation, values)
    return require_directory(session, name)


def reset_failures(session: Session, name: str) -> Directory:
    """Clear the failure streak of `name` (an admin `resume`); history stays in runs."""
    row = require_directory(session, name)
    row.consecutive_failures = 0
    row.auth_failure = False
    session.flush()
    return row
