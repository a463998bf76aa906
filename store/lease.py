"""Database leases: "one cycle per directory at a time" when there is no Redis.

A lease is a row `(name, holder, expires_at)`. Taking it is one atomic upsert: insert the
row, or overwrite it only when it has expired, is already ours, or belongs to a holder we
found dead. On PostgreSQL the upsert locks the conflicting row and re-checks the condition;
on SQLite the statement runs under the database write lock. Either way two processes can
never both be told True.

The holder id is `host:pid:since:pidns:random` (`store.locking.new_holder`). A refused caller
reads who holds the lease; when that holder ran on this host and its process is gone
(SIGKILL, OOM), the lease is taken over at once. A holder on another host is replaced only
after its lease expires: a short TTL (60 s by default) that a heartbeat renews every
quarter TTL while the cycle runs.

Expiry is judged by the application clock (`reconcile.clock.now`, or an explicit `now`),
so holders on different hosts need reasonably synchronised clocks (well within the TTL).
Only the holder can release or extend a lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reconcile import clock
from store.engine import Store
from store.locking import LockHandle, LockHolder, new_holder
from store.models import leases

log = logging.getLogger("dirsync.store.lease")

HEARTBEATS_PER_TTL = 4


def acquire(
    store: Store,
    name: str,
    holder: str,
    ttl_seconds: float,
    *,
    now: datetime | None = None,
    replacing: str | None = None,
) -> bool:
    """Take lease `name` for `holder` until now + `ttl_seconds`. True when `holder` now
    holds it (it was free, expired, already held by `holder`, which extends it, or held
    by `replacing`, a holder the caller found dead)."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    at = now or clock.now()
    expires = at + timedelta(seconds=ttl_seconds)
    takeable = [leases.c.expires_at <= at, leases.c.holder == holder]
    if replacing is not None:
        takeable.append(leases.c.holder == replacing)
    insert = postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert
    upsert = insert(leases).values(name=name, holder=holder, expires_at=expires)
    stmt = upsert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"holder": holder, "expires_at": expires},
        where=or_(*takeable),
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


def current_holder(store: Store, name: str) -> LockHolder | None:
    """Who holds lease `name` (expired or not), or None when nobody does."""
    with store.session() as session:
        holder = session.scalar(select(leases.c.holder).where(leases.c.name == name))
    return None if holder is None else LockHolder.parse(holder)


def is_live(session: Session, name: str) -> bool:
    """Whether lease `name` is held and not expired (by the application clock), read in
    the caller's transaction."""
    expires = session.scalar(select(leases.c.expires_at).where(leases.c.name == name))
    return expires is not None and expires > clock.now()


def take(store: Store, name: str, holder: str, ttl_seconds: float) -> tuple[bool, LockHolder | None]:
    """Try lease `name` once, replacing at once a holder whose process is gone from this
    host. (True, None) when `holder` now holds it; else (False, who holds it)."""
    if acquire(store, name, holder, ttl_seconds):
        return True, None
    current = current_holder(store, name)
    if current is None:  # let go between the two statements
        return acquire(store, name, holder, ttl_seconds), None
    if current.process_gone() and acquire(store, name, holder, ttl_seconds, replacing=current.id):
        log.warning("lease %s taken over from %s: that process no longer runs", name, current.describe())
        return True, None
    return False, current


@contextmanager
def held_lease(
    store: Store,
    name: str,
    ttl_seconds: float,
    *,
    holder: str | None = None,
    heartbeat_seconds: float | None = None,
) -> Iterator[LockHandle]:
    """Try lease `name` without waiting; yields a `LockHandle` (see `store.locking`):
    truthy while held, falsy with the other holder when refused. While held, a heartbeat
    thread extends it every `heartbeat_seconds` (default a quarter of the TTL), so a long
    cycle keeps it and a dead process on another host loses it within the TTL; a lease
    found taken over marks the handle lost. Released on exit."""
    who = holder or new_holder()
    taken, other = take(store, name, who, ttl_seconds)
    if not taken:
        yield LockHandle(f"lease {name}", acquired=False, holder=other)
        return
    # Judged conservatively: from just before the acquire, not from its commit.
    handle = LockHandle(f"lease {name}", acquired=True, holder=LockHolder.parse(who),
                        until=clock.now() + timedelta(seconds=ttl_seconds))
    stop = threading.Event()
    beat = heartbeat_seconds if heartbeat_seconds is not None else ttl_seconds / HEARTBEATS_PER_TTL
    keeper = threading.Thread(
        target=_heartbeat, args=(store, name, who, ttl_seconds, beat, stop, handle), daemon=True,
        name=f"lease-heartbeat-{name}",
    )
    keeper.start()
    try:
        yield handle
    finally:
        stop.set()
        keeper.join()
        if not release(store, name, who):
            log.warning("lease %s was lost before release (taken over after expiry)", name)


def _heartbeat(
    store: Store, name: str, holder: str, ttl: float, every: float, stop: threading.Event,
    handle: LockHandle,
) -> None:
    while not stop.wait(every):
        now = clock.now()
        try:
            if not extend(store, name, holder, ttl, now=now):
                _lost(store, name, handle)
                return
        except Exception:  # a failed heartbeat must not kill the cycle; the next may succeed
            log.exception("could not extend lease %s", name)
            continue
        handle.renewed(now + timedelta(seconds=ttl))


def _lost(store: Store, name: str, handle: LockHandle) -> None:
    try:
        thief = current_holder(store, name)
    except Exception:  # the reason is a nicety; losing the lease is what matters
        thief = None
    reason = "taken over" + (f" by {thief.describe()}" if thief is not None else " after it expired")
    log.warning("lease %s was lost: %s", name, reason)
    handle.lose(reason)
