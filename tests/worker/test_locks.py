"""The per-directory Redis lock: exclusive, kept alive while held, safe when it expired."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import pytest
import redis

from tests.worker.conftest import REDIS_URL
from worker.locks import KEY_PREFIX, redis_lock

pytestmark = pytest.mark.redis


def test_second_holder_is_refused_at_once(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=30)
    with lock("hr") as first:
        started = time.monotonic()
        with lock("hr") as second:
            assert first is True
            assert second is False
        assert time.monotonic() - started < 0.5


def test_locks_of_different_directories_are_independent(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=30)
    with lock("hr") as a, lock("okta") as b:
        assert a and b


def test_lock_is_released_on_exit_and_on_error(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=30)
    with pytest.raises(RuntimeError):
        with lock("hr"):
            raise RuntimeError("cycle crashed")
    with lock("hr") as again:
        assert again is True
    assert not redis_client.exists(KEY_PREFIX + "hr")


def test_only_one_of_many_threads_holds_the_lock(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=30)
    holders: list[int] = []
    inside = 0
    most = 0
    guard = threading.Lock()
    barrier = threading.Barrier(8)

    def contend(i: int) -> None:
        nonlocal inside, most
        barrier.wait()
        with lock("hr") as held:
            if held:
                with guard:
                    inside += 1
                    most = max(most, inside)
                    holders.append(i)
                time.sleep(0.2)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    assert len(holders) == 1


def _hold_in_child(ready: "multiprocessing.synchronize.Event", done: "multiprocessing.synchronize.Event") -> None:
    client = redis.Redis.from_url(REDIS_URL)
    with redis_lock(client, ttl=30)("hr") as held:
        assert held
        ready.set()
        done.wait(10)


def test_lock_held_by_another_process_is_refused(redis_client: redis.Redis) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_in_child, args=(ready, done))
    child.start()
    try:
        assert ready.wait(20)
        with redis_lock(redis_client, ttl=30)("hr") as held:
            assert held is False
    finally:
        done.set()
        child.join(10)
    with redis_lock(redis_client, ttl=30)("hr") as held:
        assert held is True


def test_heartbeat_keeps_a_lock_past_its_ttl(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=2, heartbeat_seconds=0.25)
    with lock("hr") as held:
        assert held
        time.sleep(3.5)  # well past the TTL
        assert redis_client.exists(KEY_PREFIX + "hr")
        with lock("hr") as other:
            assert other is False
    assert not redis_client.exists(KEY_PREFIX + "hr")


def test_lock_of_a_dead_holder_expires_and_is_taken_over(redis_client: redis.Redis) -> None:
    # A holder that died: the key exists with a TTL, and nobody extends it.
    redis_client.set(KEY_PREFIX + "hr", "dead-worker-token", px=300)
    lock = redis_lock(redis_client, ttl=30)
    with lock("hr") as held:
        assert held is False
    time.sleep(0.4)
    with lock("hr") as held:
        assert held is True


def test_release_after_the_lock_expired_logs_and_does_not_raise(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    lock = redis_lock(redis_client, ttl=30, heartbeat_seconds=60)
    with caplog.at_level(logging.ERROR, logger="dirsync.worker.lock"):
        with lock("hr") as held:
            assert held
            redis_client.delete(KEY_PREFIX + "hr")  # expired
            with lock("hr") as thief:  # and taken over by another cycle
                assert thief is True
    assert "expired before its cycle ended" in caplog.text


def test_heartbeat_stops_when_the_lock_was_taken_over(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    lock = redis_lock(redis_client, ttl=5, heartbeat_seconds=0.1)
    with caplog.at_level(logging.ERROR, logger="dirsync.worker.lock"):
        with lock("hr") as held:
            assert held
            redis_client.set(KEY_PREFIX + "hr", "someone-else", px=5000)
            time.sleep(0.4)
    assert "was lost while its cycle ran" in caplog.text
    assert redis_client.get(KEY_PREFIX + "hr") == b"someone-else"
