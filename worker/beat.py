"""The beat schedule, built from the configured directories (changing the config changes it
on the next beat restart, with no code change).

One entry per directory (except `kind = "scim"` ones, which the IdP pushes to): `sync_directory(name, trigger="beat")` every `cycle_minutes`, as a
`timedelta` interval. The entry does not say "full" or "incremental": the cycle chooses
(no watermark, or `full_every_hours` since the last full read, means full), so the periodic
full cycle needs no entry of its own and cannot collide with the incremental one.

`options.expires` is the interval: a run still queued when the next one is sent (workers
down or busy) is discarded instead of piling up behind it. The task itself skips disabled
and quarantined directories, recording a `skipped` run with the reason.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from config.settings import Settings

TASK = "dirsync.sync_directory"
ENTRY_PREFIX = "sync-directory:"


def entry_name(directory: str) -> str:
    return ENTRY_PREFIX + directory


def build_schedule(settings: Settings, *, interval: timedelta | None = None) -> dict[str, dict[str, Any]]:
    """Celery `beat_schedule` for every configured directory.

    `interval` replaces every directory's `cycle_minutes` (integration tests use seconds).
    """
    schedule: dict[str, dict[str, Any]] = {}
    for name, directory in sorted(settings.directories.items()):
        if directory.kind == "scim":
            continue  # the IdP pushes to it: there is nothing to pull
        every = interval if interval is not None else timedelta(minutes=directory.cycle_minutes)
        schedule[entry_name(name)] = {
            "task": TASK,
            "schedule": every,
            "args": (name,),
            "kwargs": {"trigger": "beat"},
            "options": {"expires": every.total_seconds()},
        }
    return schedule
