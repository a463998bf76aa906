"""The Celery app: `celery -A worker.app worker` and `celery -A worker.app beat`.

The module attribute `app` is created on first use from `config.load()` (honouring
`DIRSYNC_CONFIG` and `DIRSYNC_*`), so importing `create_app` has no side effect and a
process that never touches `app` never reads the configuration. Tests and `worker.client.submit_sync`
build their own app with `create_app(settings)`; the tasks (`worker.tasks`) are shared, so
every app carries them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.signals import before_task_publish, beat_init, setup_logging, worker_init, worker_ready, worker_shutdown

import config
from config.errors import ConfigError
from config.settings import Settings
from worker.beat import SYNC_DUE, DispatchLog, MemoryDispatchLog, RedisDispatchLog, build_schedule
from worker.locks import LockFactory, redis_lock

if TYPE_CHECKING:
    import redis

    from store import Store

log = logging.getLogger("dirsync.worker")

CycleFn = Callable[..., Any]


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings derived from `[worker]`, each chosen for a reason (see comments)."""
    worker = settings.worker
    # The worst cycle: the hard time limit. (The lock TTL is much shorter: a heartbeat
    # extends it while the cycle runs, so a dead worker blocks its directory a minute at most.)
    hard_limit = worker.cycle_time_limit_seconds
    return {
        "broker_url": worker.broker_url,
        "result_backend": worker.result_backend or _default_backend(worker.broker_url),
        "broker_connection_retry_on_startup": True,
        # JSON only: a broker message can never make a worker unpickle code.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # Ack after the cycle returns, not when it starts: if the worker process or host
        # dies mid-cycle the message stays in Redis and is delivered again, and the next
        # cycle repairs the store (cycles are idempotent and locked, so a repeat is safe).
        "task_acks_late": True,
        # ...but a cycle that kills its own pool process (OOM, SIGKILL) is failed and acked,
        # not redelivered: a poison cycle must not loop; beat's next run retries it anyway.
        "task_reject_on_worker_lost": False,
        # One message reserved per process: a long cycle must not hold other directories'
        # queued cycles hostage while another worker sits idle.
        "worker_prefetch_multiplier": 1,
        # A cycle past its soft limit gets SoftTimeLimitExceeded (the cycle records a failed
        # run); one past the hard limit has its pool process killed, which frees the lock
        # within one TTL. Both stay within what the heartbeat-extended lock assumes.
        "task_soft_time_limit": max(hard_limit - 60, hard_limit * 9 // 10),
        "task_time_limit": hard_limit,
        # Redis redelivers an unacked message after the visibility timeout. It must be
        # longer than any cycle (the hard limit) or a running cycle would be handed to a
        # second worker; twice the limit leaves room for queueing.
        "broker_transport_options": {"visibility_timeout": 2 * hard_limit},
        "result_backend_transport_options": {"visibility_timeout": 2 * hard_limit},
        # The store's sync_runs table is the record; Redis results only serve `--wait`.
        "result_expires": 24 * 3600,
        "task_track_started": True,
        # Events let flower show cycles as they run.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # dirsync configures logging itself (worker.logs): one format, redaction included.
        "worker_hijack_root_logger": False,
        "beat_schedule": build_schedule(),
    }


def _default_backend(broker_url: str) -> str:
    """Results go where the messages go: the same Redis; in memory for a `memory://` broker."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return broker_url
    if broker_url.startswith("memory://"):
        return "cache+memory://"
    return "rpc://"


class DirsyncCelery(Celery):  # type: ignore[misc]
    """A Celery app that knows its dirsync settings and, per process, its store and lock."""

    def __init__(self, settings: Settings, *, cycle: CycleFn | None = None, **kwargs: Any) -> None:
        super().__init__("dirsync", include=["worker.tasks"], **kwargs)
        self.settings = settings
        self._cycle = cycle
        # Replaces every directory's cycle_minutes when set (integration tests use seconds).
        self.every: timedelta | None = None
        self._store: tuple[int, Store] | None = None
        self._lock: tuple[int, LockFactory | None] | None = None
        self._redis: tuple[int, redis.Redis | None] | None = None
        self._dispatched: DispatchLog | None = None
        self.conf.update(celery_config(settings))

    @property
    def cycle(self) -> CycleFn:
        """The cycle runner: `service.sync.cycle` unless the app was built with another."""
        if self._cycle is not None:
            return self._cycle
        from service.sync import cycle

        return cycle

    def store(self) -> Store:
        """This process's store, opened on first use (never shared across a fork)."""
        if self._store is None or self._store[0] != os.getpid():
            from store import open_store

            self._store = (os.getpid(), open_store(self.settings.store.url))
        return self._store[1]

    def redis(self) -> redis.Redis | None:
        """This process's client on the broker when it is Redis (locks, heartbeats, dispatch log)."""
        if self._redis is None or self._redis[0] != os.getpid():
            url = self.settings.worker.broker_url
            client = None
            if url.startswith(("redis://", "rediss://", "unix://")):
                import redis

                client = redis.Redis.from_url(url)
            self._redis = (os.getpid(), client)
        return self._redis[1]

    def directory_lock(self) -> LockFactory | None:
        """The Redis lock when the broker is Redis; None lets the cycle use its DB lease."""
        if self._lock is None or self._lock[0] != os.getpid():
            client = self.redis()
            factory = redis_lock(client, ttl=self.settings.worker.lock_ttl_seconds) if client is not None else None
            self._lock = (os.getpid(), factory)
        return self._lock[1]

    def cycle_running(self, name: str) -> bool:
        """True while a cycle of `name` holds its Redis lock (False without Redis)."""
        client = self.redis()
        if client is None:
            return False
        from worker.locks import KEY_PREFIX

        return bool(client.exists(KEY_PREFIX + name))

    def dispatch_log(self) -> DispatchLog:
        """Where the due tick notes what it sent: Redis, shared by every worker; in memory
        for a broker in memory (then there is only this process)."""
        client = self.redis()
        if client is not None:
            return RedisDispatchLog(client)
        if self._dispatched is None:
            self._dispatched = MemoryDispatchLog()
        return self._dispatched


def create_app(settings: Settings | None = None, *, cycle: CycleFn | None = None) -> DirsyncCelery:
    """A configured app for `settings` (default: `config.load()`)."""
    import worker.tasks  # noqa: F401  (registers the shared tasks before anyone sends one)

    return DirsyncCelery(settings if settings is not None else config.load(), cycle=cycle)


def _default_app() -> DirsyncCelery:
    try:
        return create_app()
    except ConfigError as exc:
        # One clear line and exit code 2, as every dirsync command does on bad config.
        print(f"dirsync: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


_app: DirsyncCelery | None = None


def __getattr__(name: str) -> Any:
    """`worker.app.app` (and `.celery`, which Celery also looks for), built on first access."""
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = _default_app()
            _app.set_default()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own handlers.
    from worker.logs import configure

    configure(_current_settings().worker)


@worker_init.connect
def _start_metrics(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if isinstance(app, DirsyncCelery) and app.settings.worker.metrics_port:
        from worker.metrics import serve

        serve(app.settings, app.settings.worker.metrics_port, store=app.store)


_heartbeat: Any = None


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    """The worker's main process reports every 30 s that it is alive (service.heartbeat)."""
    global _heartbeat
    app = getattr(sender, "app", None)
    client = app.redis() if isinstance(app, DirsyncCelery) else None
    if client is None:
        return
    from service.heartbeat import WorkerHeartbeat

    _heartbeat = WorkerHeartbeat(client, str(getattr(sender, "hostname", None) or os.getpid()))
    _heartbeat.start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


@beat_init.connect
def _beat_started(sender: Any = None, **_: Any) -> None:
    _beat_heartbeat(getattr(sender, "app", None))


@before_task_publish.connect
def _beat_ticked(sender: Any = None, **_: Any) -> None:
    """Beat is alive each time it sends its due tick (only beat sends that task)."""
    if sender == SYNC_DUE:
        from celery import current_app

        _beat_heartbeat(current_app._get_current_object())


def _beat_heartbeat(app: Any) -> None:
    client = app.redis() if isinstance(app, DirsyncCelery) else None
    if client is None:
        return
    from service.heartbeat import BEAT_KEY, write

    try:
        write(client, BEAT_KEY)
    except Exception as exc:  # beat keeps ticking without Redis; the send itself will say why
        log.warning("beat heartbeat not written (%s)", type(exc).__name__)


def _current_settings() -> Settings:
    from celery import current_app

    app = current_app._get_current_object()
    if isinstance(app, DirsyncCelery):
        return app.settings
    return config.load()
