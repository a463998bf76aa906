"""Celery tasks: `sync_directory`, `sync_all`, `sync_user`, and `submit_sync` for the CLI.

Tasks are shared (registered on every app), and find their settings, store, lock and
cycle runner on the app that runs them (`worker.app.DirsyncCelery`). The work itself is in
plain functions (`run_directory`, `run_user`) that take everything as arguments, so tests
drive them without Celery.

A beat-triggered run first asks `worker.schedule.decide`: a disabled or quarantined
directory is not cycled, and a `skipped` run records why. Any other trigger (an admin's
`sync_directory.delay()`, `dirsync sync --async`) runs the cycle: an admin asking for a
cycle is how a quarantined directory is tried early.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from celery import shared_task

from config.errors import ConfigError
from config.settings import Settings
from reconcile import clock
from worker import schedule
from worker.locks import LockFactory

if TYPE_CHECKING:
    from store import Store
    from worker.app import DirsyncCelery

log = logging.getLogger("dirsync.worker.cycle")

SYNC_DIRECTORY = "dirsync.sync_directory"
SYNC_ALL = "dirsync.sync_all"
SYNC_USER = "dirsync.sync_user"

CycleFn = Callable[..., Any]


def result_dict(result: Any) -> dict[str, Any]:
    """A RunResult (or anything with its fields) as the JSON a task returns."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        data = dataclasses.asdict(result)
    elif isinstance(result, Mapping):
        data = dict(result)
    else:
        data = dict(vars(result))
    return {k: (v.value if hasattr(v, "value") else v) for k, v in data.items()}


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
) -> dict[str, Any]:
    """Run (or, for beat, maybe skip) one cycle of `name`; return its result as a dict.

    Promise: never raises for a cycle's failure (the result says "failed"); logs one line
    at the start and one at the end of every cycle, plus one per failure or quarantine.
    """
    try:
        directory = settings.directory(name)
    except ConfigError as exc:
        log.error("cycle refused: %s", exc, extra={"directory": name, "trigger": trigger})
        return _refused(name, str(exc))
    if trigger == "beat" and store is not None:
        from worker.status import read_state

        cadence = cadence_of(settings, name)
        decision = schedule.decide(read_state(store, name), cadence, now())
        if not decision.run:
            reason = decision.reason or "not due"
            run_id = record_skipped(store, name, trigger, reason, now())
            log.info(
                "cycle skipped: directory %s %s", name, reason,
                extra={"directory": name, "trigger": trigger, "status": "skipped", "run_id": run_id},
            )
            return {"directory": name, "run_id": run_id, "status": "skipped", "mode": None,
                    "counts": {}, "error": reason, "auth_failure": False, "duration_seconds": 0.0}
    extra = {"directory": name, "kind": directory.kind, "trigger": trigger}
    log.info("cycle start: directory %s (trigger %s%s)", name, trigger, ", full" if full else "", extra=extra)
    kwargs: dict[str, Any] = {
        "trigger": trigger, "full": full, "dry_run": dry_run, "allow_deactivations": allow_deactivations,
    }
    if store is not None:
        kwargs["store"] = store
    if lock is not None:
        kwargs["lock"] = lock
    result = result_dict(cycle(settings, name, **kwargs))
    _log_end(settings, name, result, store, extra, now)
    return result


def run_user(settings: Settings, name: str, key: str, *, sync_user: CycleFn) -> dict[str, Any]:
    """Provision one user (by email or external id) now, through the same pipeline."""
    extra = {"directory": name, "trigger": "user", "user": key}
    log.info("user sync start: directory %s user %s", name, key, extra=extra)
    result = result_dict(sync_user(settings, name, key))
    log.info("user sync end: directory %s user %s %s", name, key, result.get("status"), extra=extra)
    return result


def cadence_of(settings: Settings, name: str) -> schedule.Cadence:
    d = settings.directory(name)
    return schedule.Cadence(
        cycle_minutes=d.cycle_minutes,
        full_every_hours=d.full_every_hours,
        quarantine_after=settings.safety.quarantine_after,
    )


def record_skipped(store: Store, name: str, trigger: str, reason: str, at: datetime) -> int | None:
    """Write a `skipped` sync_runs row saying why; returns its id."""
    from store import record_skipped_run

    return cast("int | None", record_skipped_run(store, name, trigger=trigger, reason=reason, at=at))


def _log_end(
    settings: Settings, name: str, result: dict[str, Any], store: Store | None,
    extra: dict[str, Any], now: Callable[[], datetime],
) -> None:
    status = result.get("status")
    extra = {**extra, "status": status, "run_id": result.get("run_id"), "mode": result.get("mode"),
             "duration_seconds": result.get("duration_seconds"), "counts": result.get("counts")}
    counts = ", ".join(f"{k}={v}" for k, v in sorted((result.get("counts") or {}).items()) if v)
    log.info(
        "cycle end: directory %s %s %s in %.1fs%s", name, status, result.get("mode") or "-",
        float(result.get("duration_seconds") or 0.0), f" ({counts})" if counts else "", extra=extra,
    )
    if status == "failed":
        log.warning("cycle failed: directory %s: %s", name, result.get("error"), extra=extra)
        if store is not None:
            from worker.status import read_state

            state = read_state(store, name)
            cadence = cadence_of(settings, name)
            if schedule.is_quarantined(state, cadence):
                attempt = schedule.next_attempt(state, cadence)
                log.error(
                    "directory %s quarantined after %d failed cycles%s; next attempt %s",
                    name, state.consecutive_failures, " (authentication refused)" if state.auth_failure else "",
                    attempt.isoformat(timespec="seconds") if attempt else "now", extra=extra,
                )
    elif status == "halted":
        log.warning(
            "cycle halted by a safety guard: directory %s: %s (approve with: dirsync sync %s --allow-deactivations)",
            name, result.get("error"), name, extra=extra,
        )


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
    return run_directory(
        app.settings, name, cycle=app.cycle, store=app.store(), lock=app.directory_lock(),
        trigger=trigger, full=full, dry_run=dry_run, allow_deactivations=allow_deactivations,
    )


@shared_task(name=SYNC_ALL, bind=True)
def sync_all(self: Any, full: bool = False) -> list[str]:
    """Queue one `sync_directory` per configured directory; returns their task ids."""
    app = _app(self)
    return [
        app.send_task(SYNC_DIRECTORY, args=(name,), kwargs={"full": full}).id
        for name in sorted(app.settings.directories)
    ]


@shared_task(name=SYNC_USER, bind=True)
def sync_user(self: Any, name: str, key: str) -> dict[str, Any]:
    """Provision-on-demand: one user of `name` by email or external id, synchronously."""
    from reconcile.cycle import sync_user as cycle_sync_user

    return run_user(_app(self).settings, name, key, sync_user=cycle_sync_user)


def submit_sync(
    settings: Settings,
    names: Iterable[str],
    *,
    full: bool = False,
    dry_run: bool = False,
    allow_deactivations: bool = False,
    wait: bool = False,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """`dirsync sync --async [--wait]`: queue one cycle per name on the broker of `settings`.

    Without `wait` each dict is `{"directory", "task_id", "status": "queued"}`. With `wait`
    it is the cycle's result (as `sync_directory` returns it), or status "timeout" when
    `timeout` seconds passed first (the cycle keeps running on its worker).
    Unknown names raise `ConfigError` before anything is queued.
    """
    from celery.exceptions import TimeoutError as CeleryTimeout

    from worker.app import create_app

    chosen = list(names) or sorted(settings.directories)
    for name in chosen:
        settings.directory(name)
    app = create_app(settings)
    sent = [
        (name, app.send_task(
            SYNC_DIRECTORY, args=(name,),
            kwargs={"full": full, "dry_run": dry_run, "allow_deactivations": allow_deactivations, "trigger": "cli"},
        ))
        for name in chosen
    ]
    if not wait:
        return [{"directory": name, "task_id": r.id, "status": "queued"} for name, r in sent]
    out: list[dict[str, Any]] = []
    for name, r in sent:
        try:
            value = r.get(timeout=timeout, propagate=False)
        except CeleryTimeout:
            out.append({"directory": name, "task_id": r.id, "status": "timeout",
                        "error": f"no result within {timeout}s; the cycle continues on its worker"})
            continue
        if isinstance(value, dict):
            out.append({**value, "task_id": r.id})
        else:  # the task itself raised (e.g. killed by its time limit)
            out.append({"directory": name, "task_id": r.id, "status": "failed", "error": str(value)})
    return out
