"""The beat schedule, and what beat's tick dispatches.

Beat keeps no per-directory timetable. Its schedule has two entries:

- `sync-due`, every `TICK` (30 s): the task `dirsync.sync_due`, run by a worker, asks the
  store which directories are due (`service.schedule.is_due`: last cycle's start plus
  `cycle_minutes`, a full read falling due, quarantine, disabled) and sends one
  `sync_directory(name, trigger="beat")` for each, the longest due first. The entry fires
  at beat's first tick, so a directory that never ran, or whose last run is older than its
  interval, starts within a minute of beat starting, and a restart neither postpones nor
  repeats a cycle.
- `prune-runs`, daily at 03:30 UTC: `dirsync.prune` deletes runs older than
  `[store] keep_runs_days`.

A dispatched cycle may wait in the queue; until it starts, the store still says "due", so
`DispatchLog` remembers when each directory was last sent and the tick does not send it
again within its interval. A directory whose cycle is running (its lock is held) is not
sent either: that cycle would only be skipped; the tick after the lock is free sends it.
A cycle's `expires` is its interval: one still queued when the next one would be sent is
discarded (and recorded as a `skipped` run) instead of piling up, and sent again by a
later tick: sending the longest due first puts it ahead of the directories that ran
meanwhile, so workers that fall behind the schedule leave no directory out. The task
itself re-checks the schedule when it starts (`service.schedule.decide`), so a second beat
or a repeated message never runs a directory twice in one interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from celery.schedules import crontab

from config.settings import Settings
from service import schedule

if TYPE_CHECKING:
    import redis

    from store import Store

SYNC_DUE = "dirsync.sync_due"
PRUNE = "dirsync.prune"
DUE_ENTRY = "sync-due"
PRUNE_ENTRY = "prune-runs"
TICK = timedelta(seconds=30)
PRUNE_AT = {"hour": 3, "minute": 30}
# Older than any tick: beat's first tick fires the entry at once instead of one TICK later.
_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def build_schedule(tick: timedelta = TICK) -> dict[str, dict[str, Any]]:
    """Celery `beat_schedule`: the due tick and the daily prune (the same for every
    configuration: the workers' tick reads the directories).

    `tick` replaces the 30 s tick (integration tests use a second).
    """
    return {
        DUE_ENTRY: {
            "task": SYNC_DUE,
            "schedule": tick,
            "last_run_at": _LONG_AGO,
            # A tick nobody took in time is worthless: the next one asks the store afresh.
            "options": {"expires": tick.total_seconds()},
        },
        PRUNE_ENTRY: {"task": PRUNE, "schedule": crontab(**PRUNE_AT), "options": {"expires": 3600.0}},
    }


# --- what the tick sends -----------------------------------------------------------------


class DispatchLog(Protocol):
    """Remembers when each directory's scheduled cycle was last sent."""

    def claim(self, name: str, now: datetime, interval: timedelta, started: datetime | None) -> bool:
        """True (and `now` recorded) unless `name` was sent less than `interval` ago and
        after `started`, its last cycle's start (so the cycle sent has not started yet)."""
        ...


class MemoryDispatchLog:
    """For a broker in memory (one process): a dict under a lock."""

    def __init__(self) -> None:
        self._sent: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def claim(self, name: str, now: datetime, interval: timedelta, started: datetime | None) -> bool:
        with self._lock:
            last = self._sent.get(name)
            if last is not None and last > _pending_after(now, interval, started):
                return False
            self._sent[name] = now
            return True


# Atomic check-and-set: two ticks on two workers never both send one directory.
_CLAIM = """
local old = redis.call('GET', KEYS[1])
if old and tonumber(old) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class RedisDispatchLog:
    """In Redis, shared by every worker: `dirsync:dispatched:<name>` holds the Unix time.

    Times come from the caller (the application clock), so the window follows the clock
    the schedule reads; the key's own expiry only removes it once it no longer matters.
    """

    KEY_PREFIX = "dirsync:dispatched:"

    def __init__(self, client: redis.Redis) -> None:
        self._claim = client.register_script(_CLAIM)

    def claim(self, name: str, now: datetime, interval: timedelta, started: datetime | None) -> bool:
        keep = int(interval.total_seconds()) + 60
        after = _pending_after(now, interval, started).timestamp()
        done = self._claim(keys=[self.KEY_PREFIX + name], args=[after, now.timestamp(), keep])
        return bool(done)


def _pending_after(now: datetime, interval: timedelta, started: datetime | None) -> datetime:
    """A cycle sent after this time is still pending: sent within the interval, and after
    the directory's last cycle started."""
    return max(now - interval, started) if started is not None else now - interval


SendFn = Callable[[str, float], None]  # (directory, expires seconds)


def due_directories(
    settings: Settings, states: Mapping[str, schedule.DirectoryState], now: datetime,
    every: timedelta | None = None,
) -> list[str]:
    """The configured directories whose scheduled cycle is due at `now`, the longest due
    first (`schedule.overdue_since`; one never run and never seen before all; ties by name).
    `every` replaces `cycle_minutes`, for integration tests.

    The order is the order of the queue: when the workers fall behind the schedule, a
    cycle that waits past its interval expires and is sent again, and this order puts it
    before the directories that have run since, so none is left out round after round.
    """
    from service.status import cadence_of

    def since(name: str) -> datetime:
        state = states.get(name, schedule.DirectoryState())
        return schedule.overdue_since(state, cadence_of(settings, name, every)) or _LONG_AGO

    due = [
        name for name, directory in settings.directories.items()
        if directory.kind != "scim"  # pushed by its IdP: beat never pulls it
        and schedule.is_due(states.get(name, schedule.DirectoryState()), cadence_of(settings, name, every), now)
    ]
    return sorted(due, key=lambda name: (since(name), name))


def dispatch_due(
    settings: Settings, store: Store, now: datetime, *, dispatched: DispatchLog, send: SendFn,
    every: timedelta | None = None, running: Callable[[str], bool] = lambda name: False,
) -> list[str]:
    """Send one scheduled cycle for each due directory that is not `running` and was not
    already sent within its interval, the longest due first; return the names sent."""
    from service.status import read_states

    return send_due(settings, read_states(store), now, dispatched=dispatched, send=send, every=every,
                    running=running)


def send_due(
    settings: Settings, states: Mapping[str, schedule.DirectoryState], now: datetime, *,
    dispatched: DispatchLog, send: SendFn, every: timedelta | None = None,
    running: Callable[[str], bool] = lambda name: False,
) -> list[str]:
    """`dispatch_due` on scheduling states already read (what the tick decides, given them)."""
    from service.status import cadence_of

    sent = []
    for name in due_directories(settings, states, now, every):
        if running(name):
            continue
        interval = cadence_of(settings, name, every).interval
        started = states[name].last_run_at if name in states else None
        if dispatched.claim(name, now, interval, started):
            send(name, interval.total_seconds())
            sent.append(name)
    return sent
