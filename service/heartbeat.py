"""Heartbeats: workers and beat note in Redis that they are alive, so `dirsync status` and
the metrics can say "no worker has reported since 10:02" instead of "next cycle: now".

A worker writes `dirsync:heartbeat:worker:<hostname>` every `EVERY` seconds from a thread
of its main process (started when the worker is ready); beat writes `dirsync:heartbeat:beat`
whenever it sends its due tick. Each value is the Unix time from the application clock.
Keys outlive their process by `KEEP` so a stopped daemon still shows when it last reported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reconcile import clock

if TYPE_CHECKING:
    import redis

    from config.settings import Settings

log = logging.getLogger("dirsync.worker.heartbeat")

KEY_PREFIX = "dirsync:heartbeat:"
WORKER_PREFIX = KEY_PREFIX + "worker:"
BEAT_KEY = KEY_PREFIX + "beat"
EVERY = 30.0  # seconds between a worker's heartbeats
KEEP = int(timedelta(days=7).total_seconds())
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True)
class Heartbeats:
    """The last report of each worker (by hostname) and of beat; `error` when unreadable."""

    workers: Mapping[str, datetime] = field(default_factory=dict)
    beat: datetime | None = None
    error: str | None = None

    @property
    def latest_worker(self) -> datetime | None:
        return max(self.workers.values(), default=None)


def write(client: redis.Redis, key: str, at: datetime | None = None) -> None:
    """Record a heartbeat under `key` (`BEAT_KEY` or `worker_key(hostname)`)."""
    client.set(key, (at or clock.now()).timestamp(), ex=KEEP)


def worker_key(hostname: str) -> str:
    return WORKER_PREFIX + hostname


def read(client: redis.Redis) -> Heartbeats:
    """Every heartbeat Redis holds."""
    workers: dict[str, datetime] = {}
    for key in client.scan_iter(match=WORKER_PREFIX + "*", count=100):
        value = client.get(key)
        if value is not None:
            name = (key.decode() if isinstance(key, bytes) else str(key))[len(WORKER_PREFIX):]
            workers[name] = _time(value)
    beat = client.get(BEAT_KEY)
    return Heartbeats(workers=workers, beat=_time(beat) if beat is not None else None)


def read_for(settings: Settings) -> Heartbeats:
    """The heartbeats on the configured broker; an `error` instead of raising when it is
    not Redis or cannot be reached (status must still answer)."""
    url = settings.worker.broker_url
    if not url.startswith(REDIS_SCHEMES):
        return Heartbeats(error="the broker is not Redis: no worker can report")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return read(client)
    except redis.RedisError as exc:
        return Heartbeats(error=f"broker unreachable ({type(exc).__name__})")
    finally:
        client.close()


def client_for(settings: Settings) -> redis.Redis | None:
    """A Redis client on the broker, or None when the broker is not Redis."""
    url = settings.worker.broker_url
    if not url.startswith(REDIS_SCHEMES):
        return None
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)


class WorkerHeartbeat:
    """A daemon thread writing one worker's heartbeat every `every` seconds until stopped."""

    def __init__(self, client: redis.Redis, hostname: str, every: float = EVERY) -> None:
        self._client = client
        self._key = worker_key(hostname)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dirsync-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                write(self._client, self._key)
            except Exception as exc:  # Redis away: keep trying, the worker itself carries on
                log.warning("heartbeat not written (%s)", type(exc).__name__)
            self._stop.wait(self._every)


def _time(value: bytes | str) -> datetime:
    raw = value.decode() if isinstance(value, bytes) else value
    return datetime.fromtimestamp(float(raw), UTC)
