"""Cycles for every face: a directory's cycle, provision on demand, the store's contents.

The engine (`reconcile.cycle`) does the work; faces call these and render the result.
"""

from __future__ import annotations

from typing import Any

from config import Settings
from reconcile.cycle import Lock, Progress, RunResult, UserOutcome, lease_lock, run_cycle
from reconcile.cycle import sync_user as _sync_user
from store import Store, export_state

__all__ = ["Lock", "Progress", "RunResult", "UserOutcome", "cycle", "export", "lease_lock", "sync", "sync_user"]


def sync(
    settings: Settings,
    store: Store,
    name: str,
    *,
    trigger: str = "cli",
    full: bool = False,
    dry_run: bool = False,
    allow_deactivations: bool = False,
    progress: Progress | None = None,
    lock: Lock | None = None,
    connector: Any = None,
    actor: str | None = None,
) -> RunResult:
    """One cycle of directory `name`, recorded as a run with `actor`, the person who asked
    for it (see `reconcile.cycle.run_cycle`)."""
    return run_cycle(settings, name, trigger=trigger, full=full, dry_run=dry_run,
                     allow_deactivations=allow_deactivations, store=store, progress=progress, lock=lock,
                     connector=connector, actor=actor)


def sync_user(settings: Settings, store: Store, name: str, key: str, *, lock: Lock | None = None,
              actor: str | None = None) -> RunResult:
    """Provision one user of `name` (by email or directory id) now; the result says what
    happened to them (`RunResult.user_outcome`). Its run carries `actor`."""
    return _sync_user(settings, name, key, store=store, lock=lock, actor=actor)


def export(store: Store) -> dict[str, Any]:
    """The whole store: users, groups with their members, invites — sorted."""
    with store.session() as session:
        return export_state(session)


def cycle(settings: Settings, name: str, **options: Any) -> RunResult:
    """One cycle of `name` with every option of the engine's cycle (store, lock, trigger,
    connector...): what a worker runs for a queued or scheduled cycle."""
    return run_cycle(settings, name, **options)
