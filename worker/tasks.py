"""Celery tasks: `sync_directory`, `sync_all`, `sync_user`, beat's `sync_due` and `prune`,
(`worker.client` sends them for the CLI).

Tasks are shared (registered on every app), and find their settings, store, lock and
cycle runner on the app that runs them (`worker.app.DirsyncCelery`). The work itself is in
plain functions (`run_directory`, `run_user`) that take everything as arguments, so tests
drive them without Celery.

Beat's tick (`sync_due`, see `worker.beat`) sends a cycle for each directory the store
says is due. A beat-triggered run first asks `service.schedule.decide` again: a disabled,
quarantined or not-yet-due directory is not cycled, and a `skipped` run records why. Any
other trigger (an admin's `sync_directory.delay()`, `dirsync sync --async`) runs the
cycle: an admin asking for a cycle is how a quarantined directory is tried early.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from celery import shared_task
from celery.signals import task_revoked

from config.errors import ConfigError
from config.settings import Settings
from reconcile import clock
from service import schedule
from worker.beat import PRUNE, SYNC_DUE, dispatch_due
from worker.locks import LockFactory, all_of
from service.status import cadence_of, read_state

if TYPE_CHECKING:
    from store import Store
    from worker.app import DirsyncCelery

log = logging.getLogger("dirsync.worker.cycle")

SYNC_DIRECTORY = "dirsync.sync_directory"
SYNC_ALL = "dirsync.sync_all"
SYNC_USER = "dirsync.sync_user"

CycleFn = Callable[..., Any]


RESULT_FIELDS = ("directory", "run_id", "status", "mode", "counts", "error", "auth_failure", "duration_seconds")


def result_dict(result: Any) -> dict[str, Any]:
    """A RunResult as the JSON a task returns (the plan itself stays in the store's events)."""
    data = result if isinstance(result, Mapping) else {f: getattr(result, f, None) for f in RESULT_FIELDS}
    return {f: data.get(f) for f in RESULT_FIELDS}


def run_directory(
    settings: Settings,
    name: str,
    *,
    cycle: CycleFn,
    store: Store | None,
    lock: LockFactory | None,
    trigger: str = "task",
    full: bool = False,
    dry_run: bool = False,
    allow_deactivations: bool = False,
    now: Callable[[], datetime] = clock.now,
    every: timedelta | None = None,
) -> dict[str, Any]:
    """Run (or, for beat, maybe skip) one cycle of `name`; return its result as a dict.

    Promise: never raises for a cycle's failure (the result says "failed"). The cycle logs
    its own start and end lines; this adds one line when beat's run is skipped and one
    when a failure puts the directory into quarantine.
    """
    try:
        directory = settings.directory(name)
    except ConfigError as exc:
        log.error("cycle refused: %s", exc, extra={"directory": name, "trigger": trigger})
        return _refused(name, str(exc))
    if trigger == "beat" and store is not None:
        state, cadence = read_state(store, name), cadence_of(settings, name, every)
        decision = schedule.decide(state, cadence, now())
        if not decision.run:
            reason = decision.reason or "not due"
            mode = schedule.next_mode(state, cadence, now()).value
            run_id = record_skipped(store, name, trigger, mode, reason, now())
            log.info(
                "cycle skipped: directory %s %s", name, reason,
                extra={"directory": name, "trigger": trigger, "status": "skipped", "run_id": run_id},
            )
            return {"directory": name, "run_id": run_id, "status": "skipped", "mode": mode,
                    "counts": {}, "error": reason, "auth_failure": False, "duration_seconds": 0.0}
    extra = {"directory": name, "kind": directory.kind, "trigger": trigger}
    kwargs: dict[str, Any] = {
        "trigger": trigger, "full": full, "dry_run": dry_run, "allow_deactivations": allow_deactivations,
    }
    if store is not None:
        kwargs["store"] = store
    if lock is not None:
        kwargs["lock"] = lock
    result = result_dict(cycle(settings, name, **kwargs))
    _note_quarantine(settings, name, result, store, extra)
    return result


def run_user(settings: Settings, name: str, key: str, *, sync_user: CycleFn) -> dict[str, Any]:
    """Provision one user (by email or external id) now, through the same pipeline."""
    return result_dict(sync_user(settings, name, key))


def record_skipped(store: Store, name: str, trigger: str, mode: str, reason: str, at: datetime) -> int:
    """Write a closed `skipped` sync_runs row saying why the cycle did not run; its id."""
    from store.models import SyncRun

    with store.session(write=True) as session:
        run = SyncRun(directory=name, trigger=trigger, mode=mode, status="skipped",
                      started_at=at, finished_at=at, counts={}, error=reason)
        session.add(run)
        session.flush()
        return int(run.id)


def _note_quarantine(
    settings: Settings, name: str, result: dict[str, Any], store: Store | None, extra: dict[str, Any]
) -> None:
    """After a failed cycle: one line saying the directory is (still) quarantined, and until when."""
    if result.get("status") not in ("failed", "partial") or store is None:
        return
    state, cadence = read_state(store, name), cadence_of(settings, name)
    if schedule.is_quarantined(state, cadence):
        attempt = schedule.next_attempt(state, cadence)
        log.error(
            "directory %s quarantined after %d failed cycle(s)%s; next attempt %s; last error: %s",
            name, state.consecutive_failures, " (authentication refused)" if state.auth_failure else "",
            attempt.isoformat(timespec="seconds") if attempt else "now", result.get("error"),
            extra={**extra, "status": "failed", "run_id": result.get("run_id")},
        )




def cycle_lock(settings: Settings, store: Store, redis_factory: LockFactory | None) -> LockFactory:
    """The lock a worker's cycle takes: the Redis lock (when there is one), then the store
    lease in-process `dirsync sync` cycles take too, so neither overlaps the other. Once
    both are held the cycle closes runs a dead holder left `running`."""
    from service.sync import lease_lock

    lease = lease_lock(store, settings.worker.lock_ttl_seconds)
    return all_of(*(f for f in (redis_factory, lease) if f is not None))


def _refused(name: str, error: str) -> dict[str, Any]:
    return {"directory": name, "run_id": None, "status": "refused", "mode": None, "counts": {},
            "error": error, "auth_failure": False, "duration_seconds": 0.0}


def _app(task: Any) -> DirsyncCelery:
    return cast("DirsyncCelery", task.app)


@shared_task(name=SYNC_DIRECTORY, bind=True)
def sync_directory(
    self: Any, name: str, full: bool = False, dry_run: bool = False,
    allow_deactivations: bool = False, trigger: str = "task",
) -> dict[str, Any]:
    """One cycle of directory `name` (trigger "beat" when scheduled, "task" otherwise)."""
    app = _app(self)
    store = app.store()
    return run_directory(
        app.settings, name, cycle=app.cycle, store=store,
        lock=cycle_lock(app.settings, store, app.directory_lock()),
        trigger=trigger, full=full, dry_run=dry_run, allow_deactivations=allow_deactivations, every=app.every,
    )


@shared_task(name=SYNC_ALL, bind=True)
def sync_all(self: Any, full: bool = False) -> list[str]:
    """Queue one `sync_directory` per configured directory; returns their task ids."""
    app = _app(self)
    return [
        app.send_task(SYNC_DIRECTORY, args=(name,), kwargs={"full": full}).id
        for name, directory in sorted(app.settings.directories.items())
        if directory.kind != "scim"  # pushed by its IdP: nothing to pull
    ]


@shared_task(name=SYNC_USER, bind=True)
def sync_user(self: Any, name: str, key: str) -> dict[str, Any]:
    """Provision-on-demand: one user of `name` by email or external id, synchronously."""
    from service.sync import sync_user as one_user

    app = _app(self)
    store = app.store()
    lock = cycle_lock(app.settings, store, app.directory_lock())
    return run_user(app.settings, name, key, sync_user=lambda s, n, k: one_user(s, store, n, k, lock=lock))


@shared_task(name=SYNC_DUE, bind=True)
def sync_due(self: Any) -> list[str]:
    """Beat's tick: send one scheduled cycle for each directory that is due; their names."""
    app = _app(self)
    cycle = app.tasks[SYNC_DIRECTORY]

    def send(name: str, expires: float) -> None:
        cycle.apply_async(args=(name,), kwargs={"trigger": "beat"}, expires=expires)

    return dispatch_due(app.settings, app.store(), clock.now(), dispatched=app.dispatch_log(), send=send,
                        every=app.every, running=app.cycle_running)


@shared_task(name=PRUNE, bind=True)
def prune(self: Any) -> dict[str, int]:
    """Beat's daily entry: delete runs (and their events) older than `keep_runs_days`."""
    app = _app(self)
    return prune_store(app.store(), app.settings.store.keep_runs_days, clock.now())


def prune_store(store: Store, days: int, now: datetime) -> dict[str, int]:
    """`store.runs.prune_runs` for runs started more than `days` days before `now`; one
    log line with what went."""
    from store.runs import prune_runs

    with store.session(write=True) as session:
        runs, events = prune_runs(session, before=now - timedelta(days=days))
    log.info("pruned %d run(s) and %d event(s) older than %d days", runs, events, days)
    return {"runs": runs, "events": events}


EXPIRED = ("skipped: the queued cycle expired before a worker took it (workers busier than the"
           " schedule); the next scheduled cycle runs instead")


@task_revoked.connect
def record_expired_cycle(sender: Any = None, request: Any = None, expired: bool = False, **_: Any) -> None:
    """A scheduled cycle Celery discards because it waited past its `expires` still leaves
    a `skipped` run row with the reason, so every scheduled cycle is accounted for."""
    from store import finish_run, start_run

    # Only dirsync's own app carries settings and a store (tasks never import the app).
    if not expired or getattr(request, "task", None) != SYNC_DIRECTORY or not hasattr(
            getattr(sender, "app", None), "settings"):
        return
    app = _app(sender)
    args, kwargs = tuple(getattr(request, "args", None) or ()), dict(getattr(request, "kwargs", None) or {})
    name = args[0] if args else kwargs.get("name")
    if name is None or name not in app.settings.directories:
        return
    with app.store().session(write=True) as session:
        run_id = start_run(
            session, directory=name, trigger=str(kwargs.get("trigger", "task")),
            mode="full" if kwargs.get("full") else "incremental", dry_run=bool(kwargs.get("dry_run")),
            allow_deactivations=bool(kwargs.get("allow_deactivations")),
        )
        finish_run(session, run_id, "skipped", {}, EXPIRED)
    log.warning("cycle of directory %s expired in the queue (run %s)", name, run_id,
                extra={"directory": name, "run_id": run_id, "status": "skipped"})


