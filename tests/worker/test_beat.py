"""The beat schedule comes from the configured directories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery.schedules import schedule as interval_schedule

import config
from worker.app import celery_config
from worker.beat import build_schedule, entry_name


def settings(**dirs: dict[str, object]) -> config.Settings:
    return config.parse({"directories": dirs}, environ={})


def test_each_directory_runs_every_cycle_minutes() -> None:
    s = settings(hr={"kind": "file", "path": "hr.json", "cycle_minutes": 15},
                 corp={"kind": "file", "path": "corp.json"})
    sched = build_schedule(s)
    assert sched[entry_name("hr")]["schedule"] == timedelta(minutes=15)
    assert sched[entry_name("corp")]["schedule"] == timedelta(minutes=40)
    assert sched[entry_name("hr")]["args"] == ("hr",)
    assert sched[entry_name("hr")]["kwargs"] == {"trigger": "beat"}
    assert sched[entry_name("hr")]["task"] == "dirsync.sync_directory"


def test_stale_queued_runs_expire_after_one_interval() -> None:
    sched = build_schedule(settings(hr={"kind": "file", "path": "hr.json", "cycle_minutes": 15}))
    assert sched[entry_name("hr")]["options"]["expires"] == 15 * 60


def test_no_directories_means_an_empty_schedule() -> None:
    assert build_schedule(settings()) == {}


def test_changing_the_config_changes_the_schedule() -> None:
    before = build_schedule(settings(hr={"kind": "file", "path": "a.json"}))
    after = build_schedule(settings(hr={"kind": "file", "path": "a.json", "cycle_minutes": 5},
                                    new={"kind": "file", "path": "b.json"}))
    assert set(before) == {entry_name("hr")}
    assert set(after) == {entry_name("hr"), entry_name("new")}
    assert after[entry_name("hr")]["schedule"] == timedelta(minutes=5)


def test_celery_interval_is_due_after_cycle_minutes_not_before() -> None:
    every = build_schedule(settings(hr={"kind": "file", "path": "a.json"}))[entry_name("hr")]["schedule"]
    sched = interval_schedule(every, nowfun=lambda: now)
    last = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    now = last + timedelta(minutes=39)
    assert not sched.is_due(last).is_due
    now = last + timedelta(minutes=40, seconds=1)
    assert sched.is_due(last).is_due


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


def test_broker_url_comes_from_the_environment() -> None:
    s = config.parse({}, environ={"DIRSYNC_BROKER_URL": "redis://elsewhere:6379/1"})
    assert celery_config(s)["broker_url"] == "redis://elsewhere:6379/1"
