"""The `directories` rows: sync switch, watermark and health of each configured directory.

Every function works inside the caller's session and does not commit (the session's
owner does). Rows returned stay usable after the session closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconcile import clock
from store.engine import StoreError
from store.models import Directory


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
        row = Directory(name=name, kind=kind, settings=dict(settings or {}), enabled=True)
        session.add(row)
    else:
        row.kind = kind
        if settings is not None:
            row.settings = dict(settings)
    session.flush()
    return row


def set_enabled(session: Session, name: str, enabled: bool) -> Directory:
    """Switch sync on or off for `name` (the R8 conversions are the planner's job)."""
    row = require_directory(session, name)
    row.enabled = enabled
    session.flush()
    return row


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
) -> Directory:
    """A cycle of `name` succeeded: store its watermark, note the time (and that it was a
    full sync when `full`), and clear the failure streak and quarantine."""
    row = require_directory(session, name)
    when = at or clock.now()
    row.watermark = watermark
    row.watermark_at = when
    if full:
        row.last_full_sync_at = when
    row.last_success_at = when
    row.consecutive_failures = 0
    row.auth_failure = False
    session.flush()
    return row


def record_failure(
    session: Session, name: str, *, error: str, auth: bool = False, at: datetime | None = None
) -> Directory:
    """A cycle of `name` failed: count it, keep the error text; `auth` marks an
    authentication failure (quarantine at once). The watermark is left alone."""
    row = require_directory(session, name)
    row.consecutive_failures += 1
    row.last_failure_at = at or clock.now()
    row.last_error = error
    row.auth_failure = auth
    session.flush()
    return row


def reset_failures(session: Session, name: str) -> Directory:
    """Clear the failure streak of `name` (an admin `resume`); history stays in runs."""
    row = require_directory(session, name)
    row.consecutive_failures = 0
    row.auth_failure = False
    session.flush()
    return row
