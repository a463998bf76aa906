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
    send_due,
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


def test_due_directories_are_the_never_run_and_the_overdue_longest_due_first() -> None:
    s = settings(new={"kind": "file", "path": "n.json"}, late={"kind": "file", "path": "l.json"},
                 fresh={"kind": "file", "path": "f.json"}, off={"kind": "file", "path": "o.json"})
    states = {
        "late": schedule.DirectoryState(last_run_at=T0 - 41 * MIN),
        "fresh": schedule.DirectoryState(last_run_at=T0 - 39 * MIN),
        "off": schedule.DirectoryState(enabled=False),
    }
    assert due_directories(s, states, T0) == ["new", "late"]
    assert due_directories(s, states, T0 + 2 * MIN) == ["new", "late", "fresh"]


def test_the_directory_due_longest_is_sent_first_whatever_its_name() -> None:
    s = settings(**{name: {"kind": "file", "path": f"{name}.json"} for name in ("a", "m", "z")})
    states = {
        "a": schedule.DirectoryState(last_run_at=T0 - 41 * MIN),  # due since 1 minute
        "m": schedule.DirectoryState(known_since=T0 - 5 * MIN),  # never ran, seen 5 minutes ago
        "z": schedule.DirectoryState(last_run_at=T0 - 50 * MIN),  # due since 10 minutes
    }
    assert due_directories(s, states, T0) == ["z", "m", "a"]


def test_workers_behind_the_schedule_still_run_every_directory_in_turn() -> None:
    """20 directories due every 10 minutes, a worker that runs one cycle a minute: half the
    cycles the schedule asks for. Each tick sends what is due into one FIFO queue; a
    message older than its interval expires unrun (as Celery's `expires` does) and the
    directory is sent again later. Every directory must still run within three intervals
    of its last cycle, instead of the first names running every time and the last never."""
    names = [f"d{i:02d}" for i in range(20)]
    s = settings(**{name: {"kind": "file", "path": f"{name}.json", "cycle_minutes": 10} for name in names})
    states: dict[str, schedule.DirectoryState] = {}
    log, queue = MemoryDispatchLog(), []
    starts: dict[str, list[datetime]] = {name: [] for name in names}
    for minute in range(180):
        now = T0 + minute * MIN
        send_due(s, states, now, dispatched=log,
                 send=lambda name, expires: queue.append((name, now + timedelta(seconds=expires))))
        while queue:
            name, expires_at = queue.pop(0)
            if now >= expires_at:
                continue  # expired in the queue: not run, the store unchanged
            state = states.get(name, schedule.DirectoryState())
            if schedule.decide(state, schedule.Cadence(cycle_minutes=10), now).run:
                states[name] = schedule.after_success(state, now, schedule.Mode.INCREMENTAL)
                starts[name].append(now)
                break  # the one cycle of this minute

    gaps = {name: max(b - a for a, b in zip([T0, *runs], [*runs, T0 + 180 * MIN])) for name, runs in starts.items()}
    assert max(gaps.values()) <= 30 * MIN, gaps


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
