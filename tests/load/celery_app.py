"""The app the load test starts as `celery -A tests.load.celery_app worker|beat`.

It is the worker tests' app (`tests.worker.celery_app`: `TEST_READ_DELAY` makes each
read take that long, `TEST_BEAT_SECONDS` replaces `cycle_minutes`), plus a ledger of the
scheduled cycles. Beat sends a due tick; the worker that runs it publishes one
`sync_directory` message per due directory. With `LOAD_LEDGER` set (the test sets it for
workers), every `sync_directory` message is recorded in Redis, on the broker's database,
twice: in `<ledger>:before` just before it is handed to the broker and in `<ledger>:after`
once the broker has it, each with the time it was recorded (`at`, Unix seconds). The
signals fire in the publishing process for every message, so the ledger holds every
scheduled cycle sent; a message in `before` only was cut short by a shutdown and never
reached the broker.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery.signals import after_task_publish, before_task_publish

from tests.worker.celery_app import app, settings
from worker.tasks import SYNC_DIRECTORY

LEDGER = os.environ.get("LOAD_LEDGER")
_client = redis.Redis.from_url(settings.worker.broker_url) if LEDGER else None


def _record(stage: str, sender: Any, headers: Any, body: Any) -> None:
    if _client is None or sender != SYNC_DIRECTORY:
        return
    args = body[0] if isinstance(body, (list, tuple)) and body else []
    entry = {"id": headers["id"], "directory": args[0] if args else None, "at": time.time()}
    _client.rpush(f"{LEDGER}:{stage}", json.dumps(entry))


@before_task_publish.connect
def _before(sender: Any = None, headers: Any = None, body: Any = None, **_: Any) -> None:
    _record("before", sender, headers, body)


@after_task_publish.connect
def _after(sender: Any = None, headers: Any = None, body: Any = None, **_: Any) -> None:
    _record("after", sender, headers, body)


__all__ = ["app"]
