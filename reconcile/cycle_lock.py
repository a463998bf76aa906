"""How a cycle holds its directory: the `Lock` a cycle enters, and the store lease that
serves as one without Redis (docs/operations.md, "One cycle per directory at a time")."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from store import LockHandle, Store, held_lease

# Entering a lock yields a handle that is truthy when held (see `store.LockHandle`).
Lock = Callable[[str], AbstractContextManager[LockHandle]]


def cycle_lease(name: str) -> str:
    """The name of the store lease a cycle or a decision on directory `name` holds."""
    return f"cycle:{name}"


def lease_lock(store: Store, ttl: int) -> Lock:
    """The store lease that keeps one cycle per directory at a time without Redis; the
    worker takes it too (after its Redis lock), so CLI and worker cycles never overlap."""

    def lock(name: str) -> AbstractContextManager[LockHandle]:
        return held_lease(store, cycle_lease(name), ttl)

    return lock
