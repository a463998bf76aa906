"""The per-directory Redis lock: exclusive, kept alive while held, safe when it expired."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from store import LockHandle, LockHolder, LockLost
from store.locking import pid_namespace
from tests.worker.conftest import REDIS_URL
from worker.locks import KEY_PREFIX, all_of, redis_lock

pytestmark = pytest.mark.redis


def test_second_holder_is_refused_at_once(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=30)
    with lock("hr") as first:
        started = time.monotonic()
        with lock("hr") as second:
            assert first
            assert not second
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
        assert again
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
            assert not held
    finally:
        done.set()
        child.join(10)
    with redis_lock(redis_client, ttl=30)("hr") as held:
        assert held


def test_heartbeat_keeps_a_lock_past_its_ttl(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=2)  # renewed every quarter TTL
    with lock("hr") as held:
        assert held
        time.sleep(3.5)  # well past the TTL
        assert redis_client.exists(KEY_PREFIX + "hr")
        with lock("hr") as other:
            assert not other
    assert not redis_client.exists(KEY_PREFIX + "hr")


def test_lock_of_a_dead_holder_expires_and_is_taken_over(redis_client: redis.Redis) -> None:
    # A holder that died: the key exists with a TTL, and nobody extends it.
    redis_client.set(KEY_PREFIX + "hr", "dead-worker-token", px=300)
    lock = redis_lock(redis_client, ttl=30)
    with lock("hr") as held:
        assert not held
    time.sleep(0.4)
    with lock("hr") as held:
        assert held


def test_release_after_the_lock_expired_logs_and_does_not_raise(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    lock = redis_lock(redis_client, ttl=30, heartbeat_seconds=60)
    with caplog.at_level(logging.ERROR, logger="dirsync.worker.lock"):
        with lock("hr") as held:
            assert held
            redis_client.delete(KEY_PREFIX + "hr")  # expired
            with lock("hr") as thief:  # and taken over by another cycle
                assert thief
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


# --- who holds it, and holders whose process is gone ---------------------------------------

HOST = socket.gethostname()


def _holder_id(host: str, pid: int, namespace: str | None = None) -> str:
    return f"{host}:{pid}:20261123T060000Z:{namespace or pid_namespace()}:0123abcd"


def _finished_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", ""])
    done.wait()
    return done.pid


def test_a_refused_caller_is_told_the_host_and_pid_of_the_holder(redis_client: redis.Redis) -> None:
    lock = redis_lock(redis_client, ttl=30)
    with lock("hr") as mine, lock("hr") as refused:
        assert refused.holder == mine.holder
        assert refused.holder is not None
        assert (refused.holder.host, refused.holder.pid) == (HOST, os.getpid())
        assert refused.holder.since is not None


def test_a_lock_whose_process_is_gone_from_this_host_is_taken_over_at_once(redis_client: redis.Redis) -> None:
    redis_client.set(KEY_PREFIX + "hr", _holder_id(HOST, _finished_pid()), px=600_000)

    with redis_lock(redis_client, ttl=30)("hr") as held:
        assert held and held.holder is not None
        assert redis_client.get(KEY_PREFIX + "hr") == held.holder.id.encode()


def test_a_lock_held_on_another_host_waits_for_its_ttl(redis_client: redis.Redis) -> None:
    redis_client.set(KEY_PREFIX + "hr", _holder_id(f"not-{HOST}", _finished_pid()), px=300)
    lock = redis_lock(redis_client, ttl=30)

    with lock("hr") as early:
        assert not early
        assert early.holder is not None and early.holder.host == f"not-{HOST}"
    time.sleep(0.4)
    with lock("hr") as late:
        assert late


def _hold_until_killed(ready: "multiprocessing.synchronize.Event") -> None:
    client = redis.Redis.from_url(REDIS_URL)
    with redis_lock(client, ttl=3600)("hr") as held:
        assert held
        ready.set()
        time.sleep(600)


def test_the_lock_of_a_sigkilled_worker_process_is_taken_over_at_once(redis_client: redis.Redis) -> None:
    # forkserver: a child forked from this process could inherit a lock held by one of its
    # threads (heartbeats, pools) and hang.
    ctx = multiprocessing.get_context("forkserver")
    ready = ctx.Event()
    child = ctx.Process(target=_hold_until_killed, args=(ready,))
    child.start()
    try:
        assert ready.wait(30)
        with redis_lock(redis_client, ttl=3600)("hr") as while_alive:
            assert not while_alive
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(30)

    with redis_lock(redis_client, ttl=3600)("hr") as after:
        assert after  # within the hour-long TTL: the holder's process is gone


def test_check_passes_while_the_lock_is_held(redis_client: redis.Redis) -> None:
    with redis_lock(redis_client, ttl=30)("hr") as held:
        held.check()


def test_a_lock_taken_over_while_held_makes_check_raise(redis_client: redis.Redis) -> None:
    with redis_lock(redis_client, ttl=5, heartbeat_seconds=0.05)("hr") as held:
        redis_client.set(KEY_PREFIX + "hr", "someone-else", px=5000)
        for _ in range(1000):
            if held.lost is not None:
                break
            time.sleep(0.01)

        with pytest.raises(LockLost, match="lock of directory hr lost: expired or taken over"):
            held.check()


# --- all_of -----------------------------------------------------------------------------------


@contextmanager
def _refused_by(holder: str) -> Iterator[LockHandle]:
    yield LockHandle("lease cycle:hr", acquired=False, holder=LockHolder.parse(holder))


def test_all_of_yields_the_refusal_with_its_holder_and_releases_what_it_took(redis_client: redis.Redis) -> None:
    lock = all_of(redis_lock(redis_client, ttl=30), lambda name: _refused_by("web-2:77:20261123T060000Z:4026531836:ab"))

    with lock("hr") as both:
        assert not both
        assert both.holder is not None and (both.holder.host, both.holder.pid) == ("web-2", 77)
    assert not redis_client.exists(KEY_PREFIX + "hr")


def test_all_of_check_raises_when_any_part_is_lost(redis_client: redis.Redis) -> None:
    first, second = redis_lock(redis_client, ttl=5, heartbeat_seconds=0.05, prefix="a:"), redis_lock(
        redis_client, ttl=5, heartbeat_seconds=0.05, prefix="b:")
    with all_of(first, second)("hr") as both:
        assert both
        both.check()
        redis_client.set("b:hr", "someone-else", px=5000)
        for _ in range(1000):
            if both.lost is not None:
                break
            time.sleep(0.01)

        with pytest.raises(LockLost, match="lock of directory hr lost"):
            both.check()
