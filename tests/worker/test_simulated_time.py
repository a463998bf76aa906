"""Days and weeks of cycles under frozen time: the beat schedule drives the real task body,
`run_cycle` and the store; every assertion reads what `sync_runs` and `directories` say.

`Beat` below does what celery beat does with the app's `beat_schedule`: it builds Celery's
own `ScheduleEntry` objects from it, and every simulated minute runs the task of each entry
that `is_due()` (`Task.apply`, in this process) with the entry's arguments. As with the real
beat, a new entry first fires one interval after beat starts.
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
from worker import status
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
        self.entries = {
            key: ScheduleEntry(**dict(entry, name=key, app=app)) for key, entry in app.conf.beat_schedule.items()
        }
        self.results: list[dict[str, Any]] = []

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
    assert minutes(hr) == list(range(40, 24 * 60, 40))
    assert minutes(corp) == list(range(30, 24 * 60, 30))
    assert {r.status for r in hr + corp} == {"succeeded"}
    assert {r.trigger for r in hr + corp} == {"beat"}
    assert all(r.finished_at is not None for r in hr + corp)
    assert active_users(app) == 7


def test_simulated_week_runs_a_full_cycle_every_full_every_hours(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=4)
    app = make_app(
        tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40, "full_every_hours": 24}},
        cycle=incremental_cycle(hr_file),
    )
    Beat(app, frozen).run_until(T0 + timedelta(days=7))

    runs = all_runs(app, "hr")
    assert len(runs) == 7 * 36 - 1
    first = T0 + timedelta(minutes=40)
    full = [r for r in runs if r.mode == "full"]
    assert [r.started_at for r in full] == [first + timedelta(days=d) for d in range(7)]
    assert {r.mode for r in runs if r not in full} == {"incremental"}
    assert {r.status for r in runs} == {"succeeded"}
    assert row(app, "hr").last_full_sync_at == first + timedelta(days=6)


def test_a_leaver_is_deactivated_by_the_next_full_cycle_not_an_incremental_one(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=4)
    app = make_app(
        tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40, "full_every_hours": 6}},
        cycle=incremental_cycle(hr_file),
    )
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(hours=1))  # the first (full) cycle ran at 40
    directory(hr_file, users=[user(i, prefix="hr") for i in range(3)])  # hr3 left
    beat.run_until(T0 + timedelta(hours=6, minutes=39))
    assert active_users(app) == 4  # incremental reads cannot see a removal
    beat.run_until(T0 + timedelta(hours=6, minutes=41))  # 6 hours after the first full cycle
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
    tried = attempted(all_runs(app, "hr"))

    # succeeded at 40; failed at 80, 120, 160 (quarantined); then 1h, 6h, 12h, 24h after each
    # failure, rounded up to beat's next 40-minute tick
    assert minutes(tried) == [40, 80, 120, 160, 240, 600, 1320, 2760]
    assert [r.status for r in tried] == ["succeeded"] + ["failed"] * 7
    failures = [r.started_at for r in tried[1:]]
    gaps = [b - a for a, b in zip(failures[2:], failures[3:])]
    for gap, wanted in zip(gaps, [timedelta(hours=h) for h in (1, 6, 12, 24)]):
        assert wanted <= gap < wanted + timedelta(minutes=40)
    skipped = [r for r in all_runs(app, "hr") if r.status == "skipped"]
    assert skipped and all(r.error and r.error.startswith("quarantined until") for r in skipped)
    assert row(app, "hr").consecutive_failures == 7

    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.quarantined and view.next_attempt == T0 + timedelta(minutes=2760 + 24 * 60)
    assert "does not exist" in (view.last_error or "")

    shutil.move(hidden, hr_file)  # fixed
    beat.run_until(T0 + timedelta(minutes=2760 + 24 * 60 + 81))
    tried = attempted(all_runs(app, "hr"))
    assert minutes(tried)[-3:] == [4200, 4240, 4280]  # the daily retry succeeds, then every 40 minutes
    assert [r.status for r in tried[-3:]] == ["succeeded"] * 3
    assert row(app, "hr").consecutive_failures == 0
    assert not status.collect(app.settings, app.store(), clock.now())[0].quarantined


def test_authentication_failure_quarantines_at_once(tmp_path: Path, frozen: Any) -> None:
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}},
                   cycle=partial(run_cycle, connector=Refusing()))
    Beat(app, frozen).run_until(T0 + timedelta(hours=3))
    runs = all_runs(app, "hr")
    assert [(m, r.status) for m, r in zip(minutes(runs), runs)] == [
        (40, "failed"), (80, "skipped"), (120, "failed"), (160, "skipped"),
    ]
    assert row(app, "hr").auth_failure
    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.quarantined and view.auth_failure
    assert "authentication refused" in status.render_text([view], clock.now())


def test_resume_ends_the_quarantine_at_the_next_tick(tmp_path: Path, frozen: Any) -> None:
    from worker.cli_base import Context
    from worker.commands.daemon import resume_command

    hr_file = directory(tmp_path / "hr.json", users=2)
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}}, quarantine_after=3)
    hidden = hr_file.with_suffix(".gone")
    shutil.move(hr_file, hidden)
    beat = Beat(app, frozen)
    # fails at 40, 80, 120 (quarantined until 180), skipped at 160, fails at 200: next try at 560
    beat.run_until(T0 + timedelta(minutes=210))
    assert row(app, "hr").consecutive_failures == 4
    shutil.move(hidden, hr_file)

    out = CliRunner().invoke(resume_command, ["hr"], obj=Context(str(tmp_path / "dirsync.toml")))
    assert out.exit_code == 0, out.output
    assert "resumed after 4 failed cycle(s)" in out.output
    beat.run_until(T0 + timedelta(minutes=241))
    runs = all_runs(app, "hr")
    assert (minutes(runs)[-1], runs[-1].status) == (240, "succeeded")  # the next tick, not 560
    assert row(app, "hr").consecutive_failures == 0


def test_halted_run_waits_for_approval(tmp_path: Path, frozen: Any) -> None:
    hr_file = directory(tmp_path / "hr.json", users=200)
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=41))
    directory(hr_file, users=100)  # half the directory vanishes: deactivating 100 of 200 trips S2
    beat.run_until(T0 + timedelta(minutes=121))
    runs = all_runs(app, "hr")
    assert [r.status for r in runs] == ["succeeded", "halted", "halted"]
    assert active_users(app) == 200
    view = status.collect(app.settings, app.store(), clock.now())[0]
    assert view.halted and not view.quarantined
    assert "100 deactivations awaiting approval" in status.render_text([view], clock.now())

    approved = app.tasks[SYNC_DIRECTORY].apply(args=("hr",), kwargs={"allow_deactivations": True}).get()
    assert approved["status"] == "succeeded"
    assert active_users(app) == 100
    beat.run_until(T0 + timedelta(minutes=161))
    assert all_runs(app, "hr")[-1].status == "succeeded"


def test_redis_lock_of_a_dead_worker_skips_cycles_until_it_expires(
    tmp_path: Path, frozen: Any, redis_client: redis.Redis
) -> None:
    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    redis_client.set(KEY_PREFIX + "hr", "dead-worker", px=600_000)
    beat = Beat(app, frozen)
    beat.run_until(T0 + timedelta(minutes=81))
    assert [r.status for r in all_runs(app, "hr")] == ["skipped", "skipped"]
    assert "already running" in (all_runs(app, "hr")[0].error or "")
    redis_client.delete(KEY_PREFIX + "hr")  # its TTL ran out (frozen time cannot expire a Redis key)
    beat.run_until(T0 + timedelta(minutes=121))
    assert all_runs(app, "hr")[-1].status == "succeeded"


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
    assert [r.status for r in all_runs(app, "hr")][1:] == ["skipped"]
    beat.run_until(T0 + timedelta(minutes=81))  # 80 minutes > the one-hour lease
    runs = all_runs(app, "hr")
    assert runs[0].status == "failed" and runs[0].error == INTERRUPTED
    assert runs[-1].status == "succeeded"
    assert minutes(runs)[-1] == 80


def test_disabled_directory_is_skipped_with_the_reason(tmp_path: Path, frozen: Any) -> None:
    from store import set_enabled

    directory(tmp_path / "hr.json")
    app = make_app(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}})
    with app.store().session(write=True) as session:
        set_enabled(session, "hr", False)
    Beat(app, frozen).run_until(T0 + timedelta(minutes=81))
    runs = all_runs(app, "hr")
    assert [(r.status, r.error) for r in runs] == [("skipped", "disabled"), ("skipped", "disabled")]
    assert status.collect(app.settings, app.store(), clock.now())[0].next_due is None
    _ = json.loads(status.as_json(status.collect(app.settings, app.store(), clock.now())))
