"""Database leases: one holder at a time, takeover after expiry, only the holder lets go."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from sqlalchemy import select

from store import Lease, Store, acquire, extend, held_lease, open_store, release

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


def test_held_lease_yields_false_while_someone_else_holds_it(store: Store) -> None:
    with held_lease(store, "cycle:okta", 60) as first:
        with held_lease(store, "cycle:okta", 60) as second:
            assert (first, second) == (True, False)


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
