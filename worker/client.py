"""Sending cycles to the workers from a shell (`dirsync sync --async`, `resume --async`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.settings import Settings
from worker.tasks import SYNC_DIRECTORY


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
            # PENDING: no worker took the task (tasks report STARTED when one does).
            error = (f"no worker answered within {timeout:g} s: is `dirsync worker` running? The cycle stays"
                     " queued until one does" if r.state == "PENDING"
                     else f"no result within {timeout:g} s; the cycle continues on its worker")
            out.append({"directory": name, "task_id": r.id, "status": "timeout", "error": error})
            continue
        finally:
            # Stop listening for the result now, not in a finaliser at interpreter exit
            # (which fails noisily once the process is shutting down).
            r.backend.remove_pending_result(r)
        if isinstance(value, dict):
            out.append({**value, "task_id": r.id})
        else:  # the task itself raised (e.g. killed by its time limit)
            out.append({"directory": name, "task_id": r.id, "status": "failed", "error": str(value)})
    return out
