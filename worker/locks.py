"""One cycle per directory at a time, across processes and hosts: a Redis lock.

`redis_lock(client, ttl)` returns the `lock(name)` callable `run_cycle` expects. Entering
`lock(name)` yields True when this caller now holds the directory's lock and False at once
when someone else does (DESIGN §2: a held lock means "skipped", never a wait).

While held, a heartbeat thread resets the key's TTL every third of `ttl`, so a cycle longer
than `ttl` keeps its lock, while a worker that dies (SIGKILL, lost host) lets the lock
expire within `ttl` and the next cycle takes over. If the lock was lost anyway (Redis
restarted, a pause longer than the TTL), the heartbeat logs it and stops, and the release
at the end logs it instead of crashing the task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import redis
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from redis.lock import Lock

log = logging.getLogger("dirsync.worker.lock")

KEY_PREFIX = "dirsync:lock:directory:"

LockFactory = Callable[[str], AbstractContextManager[bool]]


def redis_lock(
    client: redis.Redis,
    ttl: float,
    *,
    heartbeat_seconds: float | None = None,
    prefix: str = KEY_PREFIX,
) -> LockFactory:
    """A `lock(name) -> ContextManager[bool]` on `client`: non-blocking, TTL `ttl` seconds,
    kept alive every `heartbeat_seconds` (default `ttl / 3`) while held, released safely.
    """
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    beat = heartbeat_seconds if heartbeat_seconds is not None else ttl / 3

    @contextmanager
    def lock(name: str) -> Iterator[bool]:
        # thread_local=False: the token must be visible to the heartbeat thread, which
        # extends the lock from outside the thread that acquired it.
        held = client.lock(prefix + name, timeout=ttl, blocking=False, thread_local=False)
        # Non-blocking: a blocking acquire would also hang forever under frozen time.
        if not held.acquire(blocking=False):
            yield False
            return
        stop = threading.Event()
        keeper = threading.Thread(
            target=_heartbeat, args=(held, name, beat, stop), name=f"lock-heartbeat-{name}", daemon=True
        )
        keeper.start()
        try:
            yield True
        finally:
            stop.set()
            keeper.join(timeout=5)
            _release(held, name)

    return lock


def _heartbeat(held: Lock, name: str, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            held.reacquire()  # back to the full TTL
        except LockNotOwnedError:
            log.error("lock for directory %s was lost while its cycle ran (expired or taken over)", name)
            return
        except RedisError as exc:  # keep trying: the TTL still covers a short outage
            log.warning("could not extend the lock for directory %s: %s", name, exc)


def _release(held: Lock, name: str) -> None:
    try:
        held.release()
    except LockNotOwnedError:
        log.error("lock for directory %s had expired before its cycle ended", name)
    except LockError as exc:
        log.error("lock for directory %s could not be released: %s", name, exc)
    except RedisError as exc:  # the TTL frees it anyway
        log.warning("lock for directory %s not released (Redis unreachable): %s", name, exc)


def all_of(*factories: LockFactory) -> LockFactory:
    """A lock held only when every one of `factories` is: entered in order, and released in
    reverse; the first refusal releases those already taken and yields False."""

    @contextmanager
    def lock(name: str) -> Iterator[bool]:
        with ExitStack() as stack:
            for factory in factories:
                if not stack.enter_context(factory(name)):
                    yield False
                    return
            yield True

    return lock
