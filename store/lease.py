"""Database leases: "one cycle per directory at a time" when there is no Redis.

A lease is a row `(name, holder, expires_at)`. Taking it is one atomic upsert: insert the
row, or overwrite it only when it has expired or is already ours. On PostgreSQL the upsert
locks the conflicting row and re-checks the condition; on SQLite the statement runs under
the database write lock. Either way two processes can never both be told True.

Expiry is judged by the application clock (`reconcile.clock.now`, or an explicit `now`),
so holders on different hosts need reasonably synchronised clocks; pick a TTL far longer
than any skew. Only the holder can release or extend a lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from reconcile import clock
from store.engine import Store
from store.models import leases

log = logging.getLogger("dirsync.store.lease")


def new_holder() -> str:
    """A holder id unique to this attempt: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def acquire(
    store: Store, name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None
) -> bool:
    """Take lease `name` for `holder` until now + `ttl_seconds`. True when `holder` now
    holds it (it was free, expired, or already held by `holder`, which extends it)."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    at = now or clock.now()
    expires = at + timedelta(seconds=ttl_seconds)
    insert = postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert
    upsert = insert(leases).values(name=name, holder=holder, expires_at=expires)
    stmt = upsert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"holder": holder, "expires_at": expires},
        where=or_(leases.c.expires_at <= at, leases.c.holder == holder),
    ).returning(leases.c.holder)
    with store.begin_write() as conn:
        taken = conn.execute(stmt).first()
    return taken is not None


def release(store: Store, name: str, holder: str) -> bool:
    """Give lease `name` back. False (and nothing changes) when `holder` does not hold it."""
    stmt = delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder))
    with store.begin_write() as conn:
        return conn.execute(stmt).rowcount > 0


def extend(
    store: Store, name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None
) -> bool:
    """Push lease `name` to now + `ttl_seconds`. False when `holder` no longer holds it
    (someone took it over after it expired). An expired lease nobody took is still ours."""
    expires = (now or clock.now()) + timedelta(seconds=ttl_seconds)
    stmt = (
        update(leases)
        .where(and_(leases.c.name == name, leases.c.holder == holder))
        .values(expires_at=expires)
    )
    with store.begin_write() as conn:
        return conn.execute(stmt).rowcount > 0


@contextmanager
def held_lease(
    store: Store,
    name: str,
    ttl_seconds: float,
    *,
    holder: str | None = None,
    heartbeat_seconds: float | None = None,
) -> Iterator[bool]:
    """Try lease `name` without waiting: yields True while held, False when someone else
    holds it. While held, a heartbeat thread extends it every `heartbeat_seconds` (default
    a third of the TTL) so a long cycle keeps it, and a dead process loses it within the
    TTL. Released on exit."""
    who = holder or new_holder()
    if not acquire(store, name, who, ttl_seconds):
        yield False
        return
    stop = threading.Event()
    beat = heartbeat_seconds if heartbeat_seconds is not None else ttl_seconds / 3
    keeper = threading.Thread(
        target=_heartbeat, args=(store, name, who, ttl_seconds, beat, stop), daemon=True,
        name=f"lease-heartbeat-{name}",
    )
    keeper.start()
    try:
        yield True
    finally:
        stop.set()
        keeper.join()
        if not release(store, name, who):
            log.warning("lease %s was lost before release (taken over after expiry)", name)


def _heartbeat(
    store: Store, name: str, holder: str, ttl: float, every: float, stop: threading.Event
) -> None:
    while not stop.wait(every):
        try:
            if not extend(store, name, holder, ttl):
                log.warning("lease %s was lost: another holder took it over", name)
                return
        except Exception:  # a failed heartbeat must not kill the cycle; the next may succeed
            log.exception("could not extend lease %s", name)

