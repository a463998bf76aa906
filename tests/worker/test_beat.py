"""Beat's schedule is a tick that asks the store what is due, and a daily prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery.beat import ScheduleEntry
from celery.schedules import crontab

import config
from service import schedule
from worker.app import celery_config, create_app
from worker.beat import (
    DUE_ENTRY,
    PRUNE,
    PRUNE_ENTRY,
    SYNC_DUE,
    TICK,
    MemoryDispatchLog,
    build_schedule,
    due_directories,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def settings(**dirs: dict[str, object]) -> config.Settings:
    return config.parse({"directories": dirs}, environ={})


def test_the_tick_runs_every_30_seconds_and_expires_with_the_next_one() -> None:
    entry = build_schedule()[DUE_ENTRY]
    assert entry["task"] == SYNC_DUE
    assert entry["schedule"] == TICK == timedelta(seconds=30)
    assert entry["options"]["expires"] == 30


def test_the_tick_fires_at_beats_first_tick_not_one_interval_later() -> None:
    app = create_app(settings(hr={"kind": "file", "path": "hr.json"}), cycle=lambda *a, **k: None)
    fresh = ScheduleEntry(**dict(build_schedule()[DUE_ENTRY], name=DUE_ENTRY, app=app))
    assert fresh.is_due().is_due


def test_the_schedule_does_not_depend_on_the_directories() -> None:
    """Adding a directory or changing its cycle_minutes needs no beat restart: the tick
    reads the configuration the workers loaded."""
    before = celery_config(settings(hr={"kind": "file", "path": "a.json"}))["beat_schedule"]
    after = celery_config(settings(hr={"kind": "file", "path": "a.json", "cycle_minutes": 5},
                                   new={"kind": "file", "path": "b.json"}))["beat_schedule"]
    assert before == after and set(after) == {DUE_ENTRY, PRUNE_ENTRY}


def test_runs_are_pruned_daily() -> None:
    entry = build_schedule()[PRUNE_ENTRY]
    assert entry["task"] == PRUNE
    assert isinstance(entry["schedule"], crontab)
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})  # 03:30 UTC


def test_due_directories_are_the_never_run_and_the_overdue() -> None:
    s = settings(new={"kind": "file", "path": "n.json"}, late={"kind": "file", "path": "l.json"},
                 fresh={"kind": "file", "path": "f.json"}, off={"kind": "file", "path": "o.json"})
    states = {
        "late": schedule.DirectoryState(last_run_at=T0 - 41 * MIN),
        "fresh": schedule.DirectoryState(last_run_at=T0 - 39 * MIN),
        "off": schedule.DirectoryState(enabled=False),
    }
    assert due_directories(s, states, T0) == ["late", "new"]
    assert due_directories(s, states, T0 + 2 * MIN) == ["fresh", "late", "new"]


def test_a_directory_is_sent_once_per_interval_until_its_cycle_starts() -> None:
    log = MemoryDispatchLog()
    interval = timedelta(minutes=40)
    assert log.claim("hr", T0, interval, None)
    assert not log.claim("hr", T0 + MIN, interval, None)
    assert not log.claim("hr", T0 + 39 * MIN, interval, T0 - 5 * MIN)  # still queued
    assert log.claim("hr", T0 + 40 * MIN, interval, None)  # expired in the queue: send again
    assert log.claim("hr", T0 + 41 * MIN, interval, T0 + 41 * MIN)  # the last one started
    assert log.claim("corp", T0 + MIN, interval, None)


def test_app_configuration_is_deliberate() -> None:
    s = config.parse({"worker": {"cycle_time_limit_seconds": 1800, "broker_url": "redis://r:6379/3"}}, environ={})
    conf = celery_config(s)
    assert conf["broker_url"] == "redis://r:6379/3"
    assert conf["result_backend"] == "redis://r:6379/3"
    assert conf["task_acks_late"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_time_limit"] == 1800
    assert conf["task_soft_time_limit"] < conf["task_time_limit"]
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    assert set(conf["beat_schedule"]) == {DUE_ENTRY, PRUNE_ENTRY}


def test_broker_url_comes_from_the_environment() -> None:
    s = config.parse({}, environ={"DIRSYNC_BROKER_URL": "redis://elsewhere:6379/1"})
    assert celery_config(s)["broker_url"] == "redis://elsewhere:6379/1"
