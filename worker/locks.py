"""One cycle per directory at a time, across processes and hosts: a Redis lock.

`redis_lock(client, ttl)` returns the `lock(name)` callable `run_cycle` expects. Entering
`lock(name)` yields a `store.locking.LockHandle`: truthy when this caller now holds the
directory's lock, falsy at once, with the other holder, when someone else does (DESIGN §2:
a held lock means "skipped", never a wait).

The key's value is the holder id (`host:pid:since:pidns:random`), so a refused caller can say who
holds the lock, and a holder whose process is gone from this host (SIGKILL, OOM) is
replaced at once. A holder on another host is replaced when the key expires: a short TTL
(`lock_ttl_seconds`, 60 s by default) that a heartbeat thread renews every quarter TTL
while the cycle runs. If the lock is lost anyway (Redis restarted, a pause longer than the
TTL, a takeover), the heartbeat marks the handle lost, so the cycle's next `check()` raises
`LockLost`, and the release at the end logs it instead of crashing the task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime, timedelta

import redis
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from redis.lock import Lock

from reconcile import clock
from store import LockHandle, LockHolder, new_holder

log = logging.getLogger("dirsync.worker.lock")

KEY_PREFIX = "dirsync:lock:directory:"
HEARTBEATS_PER_TTL = 4

LockFactory = Callable[[str], AbstractContextManager[LockHandle]]

# Delete the key only while it still names the dead holder: a live one may have replaced it.
_DELETE_IF_HELD_BY = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def redis_lock(
    client: redis.Redis,
    ttl: float,
    *,
    heartbeat_seconds: float | None = None,
    prefix: str = KEY_PREFIX,
) -> LockFactory:
    """A `lock(name) -> ContextManager[LockHandle]` on `client`: non-blocking, TTL `ttl`
    seconds, kept alive every `heartbeat_seconds` (default `ttl / 4`) while held, released
    safely."""
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    beat = heartbeat_seconds if heartbeat_seconds is not None else ttl / HEARTBEATS_PER_TTL
    delete_if_held_by = client.register_script(_DELETE_IF_HELD_BY)

    @contextmanager
    def lock(name: str) -> Iterator[LockHandle]:
        label = f"lock of directory {name}"
        who = new_holder()
        # thread_local=False: the token must be visible to the heartbeat thread, which
        # extends the lock from outside the thread that acquired it.
        held = client.lock(prefix + name, timeout=ttl, blocking=False, thread_local=False)
        until = _deadline(ttl)
        taken, other = _take(client, held, who, delete_if_held_by)
        if not taken:
            yield LockHandle(label, acquired=False, holder=other)
            return
        handle = LockHandle(label, acquired=True, holder=LockHolder.parse(who), until=until)
        stop = threading.Event()
        keeper = threading.Thread(
            target=_heartbeat, args=(held, name, ttl, beat, stop, handle), name=f"lock-heartbeat-{name}",
            daemon=True,
        )
        keeper.start()
        try:
            yield handle
        finally:
            stop.set()
            keeper.join(timeout=5)
            _release(held, name)

    return lock


def _deadline(ttl: float) -> datetime:
    return clock.now() + timedelta(seconds=ttl)


def _take(
    client: redis.Redis, held: Lock, who: str, delete_if_held_by: Callable[..., object]
) -> tuple[bool, LockHolder | None]:
    """Try the lock once, replacing at once a holder whose process is gone from this host.
    (True, None) when taken; else (False, who holds it, or None when that is unknown)."""
    # Non-blocking: a blocking acquire would also hang forever under frozen time.
    if held.acquire(blocking=False, token=who):
        return True, None
    current = _holder(client, held.name)
    if current is not None and current.process_gone():
        if delete_if_held_by(keys=[held.name], args=[current.id]) and held.acquire(blocking=False, token=who):
            log.warning("lock %s taken over from %s: that process no longer runs", held.name, current.describe())
            return True, None
        current = _holder(client, held.name)
    return False, current


def _holder(client: redis.Redis, key: str) -> LockHolder | None:
    try:
        value = client.get(key)
    except RedisError:  # who holds it is a nicety; the refusal stands
        return None
    if not isinstance(value, bytes | str):
        return None
    return LockHolder.parse(value.decode(errors="replace") if isinstance(value, bytes) else value)


def _heartbeat(held: Lock, name: str, ttl: float, every: float, stop: threading.Event, handle: LockHandle) -> None:
    while not stop.wait(every):
        until = _deadline(ttl)
        try:
            held.reacquire()  # back to the full TTL
        except LockNotOwnedError:
            log.error("lock for directory %s was lost while its cycle ran (expired or taken over)", name)
            handle.lose("expired or taken over while the cycle ran")
            return
        except RedisError as exc:  # keep trying: the TTL still covers a short outage
            log.warning("could not extend the lock for directory %s: %s", name, exc)
            continue
        handle.renewed(until)


def _release(held: Lock, name: str) -> None:
    try:
        held.release()
    except LockNotOwnedError:
        log.error("lock for directory %s had expired before its cycle ended", name)
    except LockError as exc:
        log.error("lock for directory %s could not be released: %s", name, exc)
    except RedisError as exc:  # the TTL frees it anyway
        log.warning("lock for directory %s not released (Redis unreachable): %s", name, exc)


class AllHeld(LockHandle):
    """The handle of `all_of`: held while every part is; `check()` checks each part."""

    def __init__(self, label: str, parts: list[LockHandle]) -> None:
        super().__init__(label, acquired=True, holder=parts[0].holder if parts else None)
        self.parts = parts

    @property
    def lost(self) -> str | None:
        return next((reason for part in self.parts if (reason := part.lost) is not None), None)

    def check(self) -> None:
        for part in self.parts:
            part.check()  # raises naming the part that was lost


def all_of(*factories: LockFactory) -> LockFactory:
    """A lock held only when every one of `factories` is: entered in order, and released in
    reverse; the first refusal releases those already taken and yields that refusal (with
    its holder)."""

    @contextmanager
    def lock(name: str) -> Iterator[LockHandle]:
        with ExitStack() as stack:
            parts: list[LockHandle] = []
            for factory in factories:
                part = stack.enter_context(factory(name))
                if not part:
                    yield part
                    return
                parts.append(part)
            yield AllHeld(f"locks of directory {name}", parts)

    return lock
