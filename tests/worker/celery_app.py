"""The app the integration tests start as `celery -A tests.worker.celery_app worker|beat`.

It is `worker.app.create_app` on the configuration in `DIRSYNC_CONFIG`, with two test
knobs from the environment: `TEST_READ_DELAY` (seconds each read takes, to make cycles
long enough to collide) and `TEST_BEAT_SECONDS` (each directory's interval in seconds instead of `cycle_minutes`; beat's
due tick is a quarter of it) or `TEST_TICK_SECONDS` (only beat's due tick, instead of 30 s).
"""

from __future__ import annotations

import os
from datetime import timedelta

import config
from tests.worker.builders import slow_cycle
from worker.app import create_app
from worker.beat import build_schedule

settings = config.load()
app = create_app(settings, cycle=slow_cycle(float(os.environ.get("TEST_READ_DELAY", "0"))))
if os.environ.get("TEST_BEAT_SECONDS"):
    app.every = timedelta(seconds=float(os.environ["TEST_BEAT_SECONDS"]))
    app.conf.beat_schedule = build_schedule(tick=app.every / 4)
elif os.environ.get("TEST_TICK_SECONDS"):
    app.conf.beat_schedule = build_schedule(tick=timedelta(seconds=float(os.environ["TEST_TICK_SECONDS"])))
