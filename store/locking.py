"""What the directory locks share: who holds a lock, and what entering one yields.

Both locks (the store lease, `store.lease`, and the Redis lock, `worker.locks`) name their
holder with the id `new_holder()` makes, `host:pid:since:pidns:random`, so that anyone
refused can say who holds the lock, and a holder whose process is gone from this host can
be replaced at once instead of after the TTL. "This host" means the same host name and the
same PID namespace: containers that share a host name (host networking) cannot see each
other's processes, so they never judge each other's holders dead.

Entering a lock yields a `LockHandle`: truthy when this caller holds the lock (so
`if not acquired:` reads as before), with `holder` saying who holds it, and `check()`,
which raises `LockLost` once the lock was taken over, or went unrenewed past its expiry.
A cycle calls `check()` before each write so that it stops before writing without it.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from reconcile import clock

SINCE_FORMAT = "%Y%m%dT%H%M%SZ"
ALREADY_RUNNING = "skipped: a cycle of this directory is already running"


class LockLost(Exception):
    """The lock this cycle held was taken over or expired: stop before the next write."""


def new_holder(*, now: datetime | None = None) -> str:
    """A holder id unique to this attempt: host, process, when, PID namespace, random."""
    since = (now or clock.now()).astimezone(UTC).strftime(SINCE_FORMAT)
    return f"{socket.gethostname()}:{os.getpid()}:{since}:{pid_namespace()}:{uuid.uuid4().hex[:8]}"


def pid_namespace() -> str:
    """This process's PID namespace (Linux), or "-" where there is none to read."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return "-"
    return link.rsplit("[", 1)[-1].rstrip("]") or "-"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, read from its holder id. Ids in another shape (older versions,
    hand-made ones) keep `host`, `pid` and `since` None: shown as they are, and replaced
    only when their lock expires."""

    id: str
    host: str | None = None
    pid: int | None = None
    since: datetime | None = None
    namespace: str | None = None

    @classmethod
    def parse(cls, holder_id: str) -> LockHolder:
        parts = holder_id.rsplit(":", 4)
        if len(parts) != 5 or not parts[1].isdigit():
            return cls(holder_id)
        host, pid, since, namespace, _ = parts
        try:
            started = datetime.strptime(since, SINCE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return cls(holder_id)
        return cls(holder_id, host, int(pid), started, namespace)

    def describe(self) -> str:
        """`host web-1, pid 4242, since 2026-12-01 12:00:03 UTC`, or the raw id."""
        if self.since is None:
            return f"holder {self.id}"
        return f"host {self.host}, pid {self.pid}, since {self.since:%Y-%m-%d %H:%M:%S} UTC"

    def process_gone(self) -> bool:
        """True only when the holder ran on this host and its process no longer runs.
        Anything else (another host, an id without a pid, a pid in use) counts as alive:
        such a holder is replaced only when its lock expires."""
        if self.pid is None or (self.host, self.namespace) != (socket.gethostname(), pid_namespace()):
            return False
        return not _process_runs(self.pid)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers signal 0."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux), or gone meanwhile
        return False
    return state in ("Z", "X")


def skipped_message(holder: LockHolder | None) -> str:
    """The `skipped` run's error: who holds the lock, when that could be read."""
    return ALREADY_RUNNING if holder is None else f"{ALREADY_RUNNING} ({holder.describe()})"


class LockHandle:
    """What entering a directory lock yields.

    - `bool(handle)` / `handle.acquired`: True when this caller holds the lock.
    - `handle.holder`: who holds it: this caller when acquired; when refused, the other
      holder (None when it could not be read, e.g. it let go meanwhile).
    - `handle.check()`: raises `LockLost` when the heartbeat found the lock taken over, or
      the lock went unrenewed past the expiry last written (a stalled process, a store
      or Redis that refused the renewals), or it was never acquired.
    """

    def __init__(self, label: str, *, acquired: bool, holder: LockHolder | None,
                 until: datetime | None = None) -> None:
        self.label = label
        self.acquired = acquired
        self.holder = holder
        self._until = until
        self._lost: str | None = None
        self._guard = threading.Lock()

    def __bool__(self) -> bool:
        return self.acquired

    def __repr__(self) -> str:
        state = "held" if self.acquired else "refused"
        return f"<LockHandle {self.label} {state} holder={self.holder.id if self.holder else None}>"

    def renewed(self, until: datetime) -> None:
        """The heartbeat extended the lock to `until` (application clock)."""
        self._until = until

    def lose(self, reason: str) -> None:
        """The heartbeat found the lock gone; the first reason is kept."""
        with self._guard:
            if self._lost is None:
                self._lost = reason

    @property
    def lost(self) -> str | None:
        """Why the lock is no longer held, or None while it is."""
        if not self.acquired:
            return "it was never acquired"
        if self._lost is not None:
            return self._lost
        until = self._until
        if until is not None and clock.now() >= until:
            return f"it expired at {until:%Y-%m-%d %H:%M:%S} UTC without being renewed"
        return None

    def check(self) -> None:
        """Raise `LockLost` unless this caller still holds the lock."""
        reason = self.lost
        if reason is not None:
            raise LockLost(f"{self.label} lost: {reason}; stopped before the next write")
