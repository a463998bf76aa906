"""Database leases: one holder at a time, takeover after expiry, only the holder lets go."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update

from store import (
    Lease,
    LockHolder,
    LockLost,
    Store,
    acquire,
    current_holder,
    extend,
    held_lease,
    open_store,
    release,
    skipped_message,
)
from store.locking import pid_namespace

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def test_a_free_lease_is_taken(store: Store) -> None:
    assert acquire(store, "cycle:okta", "a", 60, now=T0)


def test_a_held_lease_is_refused_to_another_holder(store: Store) -> None:
    acquire(store, "cycle:okta", "a", 60, now=T0)

    assert not acquire(store, "cycle:okta", "b", 60, now=T0 + timedelta(seconds=59))


def test_leases_of_different_names_are_independent(store: Store) -> None:
    acquire(store, "cycle:okta", "a", 60, now=T0)

    assert acquire(store, "cycle:entra", "b", 60, now=T0)


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    acquire(store, "cycle:okta", "a", 60, now=T0)

    assert acquire(store, "cycle:okta", "b", 60, now=T0 + timedelta(seconds=60))
    assert not extend(store, "cycle:okta", "a", 60, now=T0 + timedelta(seconds=61))
    assert not release(store, "cycle:okta", "a")


def test_the_holder_may_take_its_lease_again(store: Store) -> None:
    acquire(store, "cycle:okta", "a", 60, now=T0)

    assert acquire(store, "cycle:okta", "a", 60, now=T0 + timedelta(seconds=30))


def test_only_the_holder_can_release(store: Store) -> None:
    acquire(store, "cycle:okta", "a", 60, now=T0)

    assert not release(store, "cycle:okta", "b")
    assert release(store, "cycle:okta", "a")
    assert acquire(store, "cycle:okta", "b", 60, now=T0)


def test_extending_pushes_the_expiry(store: Store) -> None:
    acquire(store, "cycle:okta", "a", 60, now=T0)

    assert extend(store, "cycle:okta", "a", 60, now=T0 + timedelta(seconds=50))
    assert not acquire(store, "cycle:okta", "b", 60, now=T0 + timedelta(seconds=100))
    assert acquire(store, "cycle:okta", "b", 60, now=T0 + timedelta(seconds=110))


def test_held_lease_is_falsy_while_someone_else_holds_it(store: Store) -> None:
    with held_lease(store, "cycle:okta", 60) as first:
        with held_lease(store, "cycle:okta", 60) as second:
            assert (bool(first), bool(second)) == (True, False)


def test_held_lease_is_released_at_the_end(store: Store) -> None:
    with held_lease(store, "cycle:okta", 60):
        pass

    with held_lease(store, "cycle:okta", 60) as again:
        assert again


def _expiry(store: Store, name: str) -> datetime:
    with store.session() as session:
        return session.scalars(select(Lease.expires_at).where(Lease.name == name)).one()


def test_held_lease_keeps_the_lease_alive_while_held(store: Store) -> None:
    with freeze_time(T0) as frozen, held_lease(store, "cycle:okta", 60, heartbeat_seconds=0.01) as held:
        frozen.tick(timedelta(seconds=50))
        # The heartbeat runs on its own thread: wait until it has seen the new time.
        for _ in range(1000):
            if _expiry(store, "cycle:okta") >= T0 + timedelta(seconds=110):
                break
            threading.Event().wait(0.01)
        frozen.tick(timedelta(seconds=20))  # past the first expiry, within the extended one

        assert held and not acquire(store, "cycle:okta", "intruder", 60)


def _race(url: str, holder: str, start: multiprocessing.synchronize.Event, won: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = open_store(url)
    start.wait()
    won.put((holder, acquire(store, "cycle:okta", holder, 60)))
    store.dispose()


def test_concurrent_processes_get_the_lease_exactly_once(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    # Separate processes, as separate workers would be; forked from a clean forkserver, not
    # from this process, whose other threads could leave a lock held in the child.
    context = multiprocessing.get_context("forkserver")
    start = context.Event()
    won = context.Queue()
    racers = [context.Process(target=_race, args=(url, f"p{n}", start, won)) for n in range(6)]
    for racer in racers:
        racer.start()

    start.set()
    results = [won.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)

    assert sum(took for _, took in results) == 1


# --- who holds it, and holders whose process is gone ---------------------------------------

HOST = socket.gethostname()


def _holder_id(host: str, pid: int, namespace: str | None = None) -> str:
    return f"{host}:{pid}:20261123T060000Z:{namespace or pid_namespace()}:0123abcd"


def _finished_pid() -> int:
    """The pid of a process that ran on this host and has ended (and was reaped)."""
    done = subprocess.Popen([sys.executable, "-c", ""])
    done.wait()
    return done.pid


@contextmanager
def _killed_unreaped_child() -> Iterator[int]:
    """A SIGKILLed child its parent (this process) has not reaped yet: a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(1000):  # wait until it has died, without reaping it
            with open(f"/proc/{child.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            threading.Event().wait(0.01)
        yield child.pid
    finally:
        child.wait()


def test_a_refused_caller_is_told_the_host_pid_and_since_of_the_holder(store: Store) -> None:
    with freeze_time(T0), held_lease(store, "cycle:okta", 60):
        with held_lease(store, "cycle:okta", 60) as refused:
            holder = refused.holder

    assert holder is not None
    assert (holder.host, holder.pid, holder.since) == (HOST, os.getpid(), T0)


def test_the_skip_message_names_the_holder() -> None:
    holder = LockHolder.parse("web-1:4242:20261123T060003Z:4026531836:0123abcd")

    assert skipped_message(holder) == (
        "skipped: a cycle of this directory is already running (host web-1, pid 4242, since 2026-11-23 06:00:03 UTC)"
    )


def test_the_skip_message_without_a_known_holder_is_the_plain_one() -> None:
    assert skipped_message(None) == "skipped: a cycle of this directory is already running"


@pytest.mark.parametrize("holder_id", ["dead-process", "web-1:4242:0123abcd", "web-1:4242:not-a-time:1:ab"])
def test_a_holder_id_of_another_shape_is_shown_as_it_is(holder_id: str) -> None:
    holder = LockHolder.parse(holder_id)

    assert (holder.host, holder.pid, holder.describe()) == (None, None, f"holder {holder_id}")


def test_a_lease_whose_process_is_gone_from_this_host_is_taken_over_at_once(store: Store) -> None:
    dead = _holder_id(HOST, _finished_pid())
    assert acquire(store, "cycle:okta", dead, 3600)

    with held_lease(store, "cycle:okta", 3600) as lease:
        assert lease
        assert current_holder(store, "cycle:okta") == lease.holder


def test_a_killed_holder_not_yet_reaped_counts_as_gone(store: Store) -> None:
    with _killed_unreaped_child() as pid:
        assert acquire(store, "cycle:okta", _holder_id(HOST, pid), 3600)

        with held_lease(store, "cycle:okta", 3600) as lease:
            assert lease


def test_a_live_holder_on_this_host_is_not_taken_over(store: Store) -> None:
    assert acquire(store, "cycle:okta", _holder_id(HOST, os.getpid()), 3600)

    with held_lease(store, "cycle:okta", 3600) as lease:
        assert not lease
        assert lease.holder is not None and lease.holder.pid == os.getpid()


def test_a_holder_in_another_pid_namespace_of_this_host_is_not_taken_over(store: Store) -> None:
    # A container sharing this host name (host networking) cannot see the holder's process.
    other = _holder_id(HOST, _finished_pid(), namespace=f"not-{pid_namespace()}")
    assert acquire(store, "cycle:okta", other, 3600)

    with held_lease(store, "cycle:okta", 3600) as lease:
        assert not lease


def test_a_holder_on_another_host_is_taken_over_only_after_its_lease_expires(store: Store) -> None:
    other = _holder_id(f"not-{HOST}", _finished_pid())  # that pid means nothing here
    assert acquire(store, "cycle:okta", other, 60, now=T0)

    with freeze_time(T0 + timedelta(seconds=59)), held_lease(store, "cycle:okta", 60) as early:
        assert not early
        assert early.holder is not None and early.holder.host == f"not-{HOST}"
    with freeze_time(T0 + timedelta(seconds=60)), held_lease(store, "cycle:okta", 60) as late:
        assert late


def test_a_holder_id_without_a_pid_is_never_taken_over_before_expiry(store: Store) -> None:
    assert acquire(store, "cycle:okta", "dead-process", 3600)

    with held_lease(store, "cycle:okta", 3600) as lease:
        assert not lease


def test_a_dead_holder_replaced_meanwhile_by_a_live_one_is_not_taken(store: Store) -> None:
    dead = _holder_id(HOST, _finished_pid())
    assert acquire(store, "cycle:okta", _holder_id(HOST, os.getpid()), 3600)

    assert not acquire(store, "cycle:okta", "me", 3600, replacing=dead)


# --- heartbeat and losing the lease ---------------------------------------------------------


def test_the_default_heartbeat_keeps_a_lease_past_its_ttl(store: Store) -> None:
    # Real time: a 2 s lease, renewed every quarter TTL (0.5 s), outlives its TTL.
    with held_lease(store, "cycle:okta", 2) as lease:
        for _ in range(4):
            threading.Event().wait(0.75)
            assert not acquire(store, "cycle:okta", "intruder", 2)
        lease.check()


def test_check_passes_while_the_lease_is_held(store: Store) -> None:
    with held_lease(store, "cycle:okta", 60) as lease:
        lease.check()


def test_check_of_a_refused_lease_raises(store: Store) -> None:
    with held_lease(store, "cycle:okta", 60), held_lease(store, "cycle:okta", 60) as refused:
        with pytest.raises(LockLost, match="never acquired"):
            refused.check()


def test_a_lease_taken_over_while_held_makes_check_raise_naming_the_new_holder(store: Store) -> None:
    with held_lease(store, "cycle:okta", 60, heartbeat_seconds=0.01) as lease:
        with store.begin_write() as conn:  # another host took it (after a long pause of ours)
            conn.execute(update(Lease.__table__).values(holder="web-2:77:20261123T060000Z:4026531836:0123abcd"))
        for _ in range(1000):
            if lease.lost is not None:
                break
            threading.Event().wait(0.01)

        with pytest.raises(LockLost, match="lease cycle:okta lost: taken over by host web-2, pid 77"):
            lease.check()


def test_a_lease_left_unrenewed_past_its_expiry_makes_check_raise(store: Store) -> None:
    with freeze_time(T0) as frozen, held_lease(store, "cycle:okta", 60, heartbeat_seconds=3600) as lease:
        frozen.tick(timedelta(seconds=59))
        lease.check()
        frozen.tick(timedelta(seconds=1))

        with pytest.raises(LockLost, match="expired at 2026-11-23 06:01:00 UTC"):
            lease.check()
