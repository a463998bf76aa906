"""Days and weeks of cycles under frozen time: the beat schedule drives the real task body,
`run_cycle` and the store; every assertion reads what `sync_runs` and `directories` say.

`Beat` below does what celery beat does with the app's `beat_schedule`: it builds Celery's
own `ScheduleEntry` objects from it, and every simulated minute runs the task of each entry
that `is_due()` (`Task.apply`, in this process) with the entry's arguments. The app runs
tasks eagerly, so the cycles the due tick sends run at once, in this process too. As with
the real beat, the due tick fires at beat's first tick, so a directory that never ran
starts at minute 0.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.beat import ScheduleEntry
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import select

from connectors.errors import AuthError
from connectors.file import FileConnector
from reconcile import clock
from reconcile.cycle import run_cycle
from reconcile.model import Changes, Snapshot
from store import Directory, SyncRun, User, acquire
from tests.worker.builders import directory, load, prepare_store, settings_file, user
from service import status
from cli import status_view
from worker.app import DirsyncCelery, create_app
from worker.locks import KEY_PREFIX
from store import INTERRUPTED
from worker.tasks import SYNC_DIRECTORY

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


class IncrementalFile:
    """The file connector, read the way an IdP's incremental read behaves: with a
    watermark it returns every user and group as changed but reports no removals, so
    only a full cycle notices someone left (as with Okta's `lastUpdated` filter)."""

    def __init__(self, path: Path) -> None:
        self.inner = FileConnector(path)

    def read(self, watermark: str | None, progress: object = None) -> Snapshot | Changes:
        snapshot = self.inner.read(None)
        if watermark is None:
            return snapshot
        return Changes(
            users=snapshot.users,
            groups=snapshot.groups,
            members_complete=frozenset(g.external_id for g in snapshot.groups),
            rejections=snapshot.rejections,
            watermark=snapshot.watermark,
        )

    def close(self) -> None:
        pass


class Refusing:
    """A connector whose IdP refuses the credentials."""

    def read(self, watermark: str | None, progress: object = None) -> Snapshot:
        raise AuthError("HTTP 401 from the identity provider: invalid token")

    def close(self) -> None:
        pass


class Beat:
    """Celery beat's decisions under frozen time, one simulated minute per step."""

    def __init__(self, app: DirsyncCelery, frozen: Any) -> None:
        self.app = app
        self.frozen = frozen
        app.conf.task_always_eager = True  # the cycles the tick sends run here, at once
        self.start()
        self.results: list[Any] = []

    def start(self) -> None:
        """(Re)start beat: fresh entries, as a beat without its schedule file would have."""
        self.entries = {
            key: ScheduleEntry(**dict(entry, name=key, app=self.app))
            for key, entry in self.app.conf.beat_schedule.items()
        }

    def run_until(self, end: datetime) -> None:
        """Tick every minute from now until just before `end`."""
        now = clock.now()
        while now < end:
            for key, entry in list(self.entries.items()):
                if entry.is_due().is_due:
                    self.entries[key] = next(entry)  # what beat records: last_run_at = now
                    task = self.app.tasks[entry.task]
                    self.results.append(task.apply(args=entry.args, kwargs=entry.kwargs).get())
            now += MIN
            self.frozen.move_to(now)


@pytest.fixture
def frozen() -> Iterator[Any]:
    with freeze_time(T0) as f:
        yield f


def make_app(tmp_path: Path, directories: dict[str, dict[str, Any]], *, cycle: Any = None, **options: Any) -> DirsyncCelery:
    path = settings_file(tmp_path, directories, **options)
    settings = load(path)
    prepare_store(settings)
    return create_app(settings, cycle=cycle)


def incremental_cycle(path: Path) -> Any:
    return partial(run_cycle, connector=IncrementalFile(path))


def all_runs(app: DirsyncCelery, name: str) -> list[SyncRun]:
    with app.store().session() as session:
        return list(session.scalars(select(SyncRun).where(SyncRun.directory == name).order_by(SyncRun.id)))


def row(app: DirsyncCelery, name: str) -> Directory:
    with app.store().session() as session:
        found = session.scalars(select(Directory).where(Directory.name == name)).one()
        return found


def minutes(runs: list[SyncRun]) -> list[int]:
    return [int((r.started_at - T0).total_seconds() // 60) for r in runs]


def attempted(runs: list[SyncRun]) -> list[SyncRun]:
    return [r for r in runs if r.status != "skipped"]


def active_users(app: DirsyncCelery) -> int:
    with app.store().session() as session:
        return len(list(session.scalars(select(User).where(User.active))))


@pytest.fixture(autouse=True)
def _clean_redis(redis_client: redis.Redis) -> None:
    """Every test starts with no lock keys (redis_client flushes database 15)."""


def test_simulated_day_runs_each_directory_on_its_own_cadence(tmp_path: Path, frozen: Any) -> None:
    directory(tmp_path / "hr.json", users=4)
    directory(tmp_path / "corp.json", users=3)
    app = make_app(tmp_path, {
        "hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40},
        "corp": {"kind": "file", "path": "corp.json", "cycle_minutes": 30},
    })
    Beat(app, frozen).run_until(T0 + timedelta(days=1))

    hr, corp = all_runs(app, "hr"), all_runs(app, "corp")
    assert minutes(hr) == list(range(0, 24 * 60, 40))
    assert minutes(corp) == list(range(0, 24 * 60, 30))
    assert {r.status for r in hr + corp} == {"succeeded"}
    assert {r.trigger for r in hr + corp} == {"beat"}
    assert all(r.finished_at is not None for r in hr + corp)
    assert active_users(app) == 7


def set_last_run(app: DirsyncCelery, name: str, at: datetime) -> None:
    """What the store holds for a directory whose last cycle started at `at`."""
    with app.store().session(write=True) as session:
        found = session.scalars(select(Directory).where(Directory.name == name)).one()
        found.last_run_at = at


def test_beat_started_against_overdue_directories_starts_each_within_a_minute(tmp_path: Path, frozen: Any) -> None:
    for name in ("hr", "corp", "ops"):
        directory(tmp_path / f"{name}.json")
    app = make_app(tmp_path, {name: {"kind": "file", "path": f"{name}.json", "cycle_minutes": 40}
                              for name in ("hr", "corp", "ops")})
    set_last_run(app, "hr", T0 - timedelta(hours=3))  # overdue for hours
    set_last_run(app, "ops", T0 - timedelta(minutes=30))  # due in 10 minutes
    # corp never ran
    Beat(app, frozen).run_until(T0 + timedelta(minutes=41))
    assert minutes(all_runs(app, "hr")) == [0, 40]
    assert minutes(all_runs(app, "corp")) == [0, 40]
    assert minutes(all_runs(app, "ops")) == [10]


def test_restarting_beat_within_an_interval_neither_repeats_nor_postpones_a_cycle(
    tmp_path: Path, frozen: Any
) -> None:
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=10))
    for restart_at in (10, 25, 39):  # deploys, each one a fresh beat without its schedule file
        beat.start()
        beat.run_until(T0 + timedelta(minutes=restart_at + 1))
    beat.run_until(T0 + timedelta(minutes=81))
    runs = all_runs(app, "hr")
    assert minutes(runs) == [0, 40, 80]
    assert {r.status for r in runs} == {"succeeded"}


def test_a_second_message_for_the_same_interval_is_skipped_not_run(tmp_path: Path, frozen: Any) -> None:
    """A duplicate scheduled cycle (a second beat, a redelivered message) finds the store
    says "not due" and leaves a skipped row instead of syncing twice in one interval."""
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    Beat(app, frozen).run_until(T0 + timedelta(minutes=5))
    again = app.tasks[SYNC_DIRECTORY].apply(args=("hr",), kwargs={"trigger": "beat"}).get()
    assert again["status"] == "skipped"
    assert again["error"] == f"not due until {(T0 + timedelta(minutes=40)).isoformat(timespec='seconds')}"
    assert [r.status for r in all_runs(app, "hr")] == ["succeeded", "skipped"]


def test_simulated_week_runs_a_full_cycle_every_full_every_hours(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=4)
    app = make_app(
        tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40, "full_every_hours": 24}},
        cycle=incremental_cycle(hr_file),
    )
    Beat(app, frozen).run_until(T0 + timedelta(days=7))

    runs = all_runs(app, "hr")
    assert len(runs) == 7 * 36
    full = [r for r in runs if r.mode == "full"]
    assert [r.started_at for r in full] == [T0 + timedelta(days=d) for d in range(7)]
    assert {r.mode for r in runs if r not in full} == {"incremental"}
    assert {r.status for r in runs} == {"succeeded"}
    assert row(app, "hr").last_full_sync_at == T0 + timedelta(days=6)


def test_a_full_cycle_falls_due_on_time_even_between_two_intervals(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=4)
    app = make_app(
        tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 50, "full_every_hours": 1}},
        cycle=incremental_cycle(hr_file),
    )
    Beat(app, frozen).run_until(T0 + timedelta(minutes=131))
    runs = all_runs(app, "hr")
    # full at 0; incremental at 50; the full read falls due at 60, before 100; then 110 is
    # incremental again (its interval after 60), and the next full is due at 120.
    assert [(m, r.mode) for m, r in zip(minutes(runs), runs)] == [
        (0, "full"), (50, "incremental"), (60, "full"), (110, "incremental"), (120, "full"),
    ]


def test_a_leaver_is_deactivated_by_the_next_full_cycle_not_an_incremental_one(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=4)
    app = make_app(
        tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40, "full_every_hours": 6}},
        cycle=incremental_cycle(hr_file),
    )
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(hours=1))  # the first (full) cycle ran at 0
    directory(hr_file, users=[user(i, prefix="hr") for i in range(3)])  # hr3 left
    beat.run_until(T0 + timedelta(hours=6))
    assert active_users(app) == 4  # incremental reads cannot see a removal
    beat.run_until(T0 + timedelta(hours=6, minutes=1))  # 6 hours after the first full cycle
    assert active_users(app) == 3
    assert all_runs(app, "hr")[-1].mode == "full"


def test_failing_directory_backs_off_1h_6h_12h_then_daily_and_recovers(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=4)
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}}, quarantine_after=3)
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=41))
    hidden = hr_file.with_suffix(".gone")
    shutil.move(hr_file, hidden)  # the export disappears: every read fails
    beat.run_until(T0 + timedelta(days=2))
    runs = all_runs(app, "hr")

    # succeeded at 0 and 40; failed at 80, 120, 160 (quarantined); then 1h, 6h, 12h, 24h
    # after each failure, on the minute the quarantine ends
    assert minutes(runs) == [0, 40, 80, 120, 160, 220, 580, 1300, 2740]
    assert [r.status for r in runs] == ["succeeded"] * 2 + ["failed"] * 7
    failures = [r.started_at for r in runs[2:]]
    gaps = [b - a for a, b in zip(failures[2:], failures[3:])]
    assert gaps == [timedelta(hours=h) for h in (1, 6, 12, 24)]
    assert row(app, "hr").consecutive_failures == 7

    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.quarantined and view.next_attempt == T0 + timedelta(minutes=2740 + 24 * 60)
    assert view.overdue_seconds is None  # quarantined, not late
    assert "does not exist" in (view.last_error or "")

    shutil.move(hidden, hr_file)  # fixed
    beat.run_until(T0 + timedelta(minutes=2740 + 24 * 60 + 81))
    tried = all_runs(app, "hr")
    assert minutes(tried)[-3:] == [4180, 4220, 4260]  # the daily retry succeeds, then every 40 minutes
    assert [r.status for r in tried[-3:]] == ["succeeded"] * 3
    assert row(app, "hr").consecutive_failures == 0
    assert not status.collect(app.settings, app.store(), clock.now())[0].quarantined


def test_authentication_failure_quarantines_at_once(tmp_path: Path, frozen: Any) -> None:
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}},
                   cycle=partial(run_cycle, connector=Refusing()))
    Beat(app, frozen).run_until(T0 + timedelta(hours=3))
    runs = all_runs(app, "hr")
    assert [(m, r.status) for m, r in zip(minutes(runs), runs)] == [(0, "failed"), (60, "failed")]
    assert row(app, "hr").auth_failure
    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.quarantined and view.auth_failure
    assert "authentication refused" in status_view.render_text([view], clock.now())


def test_resume_ends_the_quarantine_and_runs_a_cycle_now(tmp_path: Path, frozen: Any) -> None:
    from cli.base import Context
    from cli.commands.daemon import resume_command

    hr_file = directory(tmp_path / "hr.json", users=2)
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}}, quarantine_after=3)
    hidden = hr_file.with_suffix(".gone")
    shutil.move(hr_file, hidden)
    beat = Beat(app, frozen)
    # fails at 0, 40, 80 (quarantined until 140), fails at 140: next try at 500
    beat.run_until(T0 + timedelta(minutes=210))
    assert row(app, "hr").consecutive_failures == 4
    shutil.move(hidden, hr_file)

    out = CliRunner().invoke(resume_command, ["hr"], obj=Context(str(tmp_path / "dirsync.toml")))
    assert out.exit_code == 0, out.output
    assert "resumed after 4 failed cycle(s)" in out.output
    runs = all_runs(app, "hr")
    assert (minutes(runs)[-1], runs[-1].status, runs[-1].trigger) == (210, "succeeded", "cli")  # now, not at 500
    assert row(app, "hr").consecutive_failures == 0
    beat.run_until(T0 + timedelta(minutes=251))
    runs = all_runs(app, "hr")
    assert (minutes(runs)[-1], runs[-1].trigger) == (250, "beat")  # the schedule goes on from there


def test_halted_run_waits_for_approval(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=200)
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=1))
    directory(hr_file, users=100)  # half the directory vanishes: deactivating 100 of 200 trips S2
    beat.run_until(T0 + timedelta(minutes=81))
    runs = all_runs(app, "hr")
    assert [r.status for r in runs] == ["succeeded", "halted", "halted"]
    assert active_users(app) == 200
    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.halted and not view.quarantined
    assert "100 deactivations awaiting approval" in status_view.render_text([view], clock.now())

    approved = app.tasks[SYNC_DIRECTORY].apply(args=("hr",), kwargs={"allow_deactivations": True}).get()
    assert approved["status"] == "succeeded"
    assert active_users(app) == 100
    beat.run_until(T0 + timedelta(minutes=122))
    assert all_runs(app, "hr")[-1].status == "succeeded"


def test_a_directory_whose_lock_is_held_is_not_sent_and_shows_overdue_until_the_lock_goes(
    tmp_path: Path, frozen: Any, redis_client: redis.Redis
) -> None:
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    redis_client.set(KEY_PREFIX + "hr", "dead-worker", px=600_000)
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=41))
    assert all_runs(app, "hr") == []  # a cycle sent now would only be skipped
    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.overdue_seconds is not None and view.overdue_seconds >= 40 * 60
    redis_client.delete(KEY_PREFIX + "hr")  # its TTL ran out (frozen time cannot expire a Redis key)
    beat.run_until(T0 + timedelta(minutes=43))
    runs = all_runs(app, "hr")
    assert [(m, r.status) for m, r in zip(minutes(runs), runs)] == [(41, "succeeded")]  # the next tick


def test_a_scheduled_cycle_that_finds_the_lock_held_is_skipped_with_the_reason(
    tmp_path: Path, frozen: Any, redis_client: redis.Redis
) -> None:
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    redis_client.set(KEY_PREFIX + "hr", "another-worker", px=600_000)  # taken after the tick sent it
    result = app.tasks[SYNC_DIRECTORY].apply(args=("hr",), kwargs={"trigger": "beat"}).get()
    assert result["status"] == "skipped"
    assert "already running" in (all_runs(app, "hr")[0].error or "")


def test_store_lease_of_a_dead_process_expires_and_its_run_is_closed(tmp_path: Path, frozen: Any) -> None:
    directory(tmp_path / "hr.json")
    # No Redis broker: the store lease alone keeps cycles apart; its expiry follows the clock.
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}},
                   broker_url="memory://", lock_ttl_seconds=3600)
    store = app.store()
    assert acquire(store, "cycle:hr", "dead-process", 3600)
    with store.session(write=True) as session:
        session.add(SyncRun(directory="hr", trigger="beat", mode="full", status="running", started_at=T0, counts={}))
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=41))
    assert [r.status for r in all_runs(app, "hr")][1:] == ["skipped", "skipped"]  # at 0 and 40
    beat.run_until(T0 + timedelta(minutes=81))  # 80 minutes > the one-hour lease
    runs = all_runs(app, "hr")
    assert runs[0].status == "failed" and runs[0].error == INTERRUPTED
    assert runs[-1].status == "succeeded"
    assert minutes(runs)[-1] == 80


def test_disabled_directory_is_not_scheduled_and_a_stray_message_is_skipped(tmp_path: Path, frozen: Any) -> None:
    from store import set_enabled

    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    with app.store().session(write=True) as session:
        set_enabled(session, "hr", False)
    Beat(app, frozen).run_until(T0 + timedelta(minutes=81))
    assert all_runs(app, "hr") == []
    stray = app.tasks[SYNC_DIRECTORY].apply(args=("hr",), kwargs={"trigger": "beat"}).get()
    assert (stray["status"], stray["error"]) == ("skipped", "disabled")
    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.next_due is None and view.overdue_seconds is None
    _ = json.loads(status_view.as_json(status.collect(app.settings, app.store(), clock.now())))
