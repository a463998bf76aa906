"""A real Celery worker and beat on the real Redis (database 15), with a file directory.

What is asserted comes from the store: `sync_runs` rows and the users the cycles wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from store import open_store
from store.models import SyncRun, User
from tests.worker.builders import directory, load, prepare_store, settings_file, slow_cycle
from service import heartbeat
from worker.app import create_app
from worker.client import submit_sync
from worker.tasks import SYNC_ALL, SYNC_DIRECTORY, SYNC_USER, sync_directory

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def runs(store_url: str, *, ran_only: bool = False) -> list[SyncRun]:
    store = open_store(store_url)
    try:
        with store.session() as session:
            query = select(SyncRun).order_by(SyncRun.started_at)
            rows = list(session.scalars(query))
    finally:
        store.dispose()
    if ran_only:  # runs that held the lock (a skipped attempt never did)
        rows = [r for r in rows if r.status not in ("skipped", "refused")]
    return rows


def overlaps(rows: list[SyncRun]) -> int:
    """Pairs of runs of one directory whose [started_at, finished_at] intervals intersect."""
    count = 0
    by_dir: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in rows:
        if r.finished_at is not None:
            by_dir.setdefault(r.directory, []).append((r.started_at, r.finished_at))
    for spans in by_dir.values():
        spans.sort()
        for i, (start, end) in enumerate(spans):
            for other_start, _ in spans[i + 1:]:
                if other_start >= end:
                    break
                count += 1
    return count


def user_count(store_url: str) -> int:
    store = open_store(store_url)
    try:
        with store.session() as session:
            return int(session.scalar(select(func.count()).select_from(User).where(User.active)) or 0)
    finally:
        store.dispose()


def make_setup(tmp_path: Path, store_url: str | None = None) -> tuple[Path, str]:
    directory(tmp_path / "hr.json", users=5)
    directory(tmp_path / "corp.json", users=4)
    path = settings_file(
        tmp_path,
        {"hr": {"kind": "file", "path": "hr.json"}, "corp": {"kind": "file", "path": "corp.json"}},
        lock_ttl_seconds=10,
        store_url=store_url,
    )
    prepare_store(load(path))
    return path, load(path).store.url


@pytest.fixture
def setup(tmp_path: Path, redis_client: redis.Redis) -> tuple[Path, str]:
    """Two file directories, hr (5 users) and corp (4), on a SQLite store."""
    return make_setup(tmp_path)


@pytest.fixture
def pg_setup(tmp_path: Path, redis_client: redis.Redis, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """The same on PostgreSQL, the production store, for tests with concurrent writers."""
    from tests.conftest import _empty_postgres

    url: str = request.getfixturevalue("postgres_database")
    _empty_postgres(url)
    return make_setup(tmp_path, url)


class Processes:
    """Celery subprocesses on the test app; stopped (by their own pid) at the end."""

    def __init__(self, config_path: Path, tmp: Path) -> None:
        self.config_path = config_path
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, read_delay: float = 0.0, beat_seconds: float | None = None,
              tick_seconds: float | None = None) -> subprocess.Popen[bytes]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")},
            "DIRSYNC_CONFIG": str(self.config_path),
            "PYTHONPATH": str(ROOT),
            "TEST_READ_DELAY": str(read_delay),
        }
        if beat_seconds is not None:
            env["TEST_BEAT_SECONDS"] = str(beat_seconds)
        if tick_seconds is not None:
            env["TEST_TICK_SECONDS"] = str(tick_seconds)
        log = (self.tmp / f"proc{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.worker.celery_app", *args],
            cwd=self.tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def worker(self, name: str, *, pool: str = "prefork", concurrency: int = 2, read_delay: float = 0.0,
               beat_seconds: float | None = None) -> subprocess.Popen[bytes]:
        """A worker; `beat_seconds` replaces every directory's interval (the workers decide
        what is due, so they need the same interval as the beat)."""
        return self.start(
            "worker", f"--hostname={name}@%h", f"--pool={pool}", f"--concurrency={concurrency}",
            "--without-gossip", "--without-mingle", "--loglevel=INFO", read_delay=read_delay,
            beat_seconds=beat_seconds,
        )

    def beat(self, index: int, seconds: float | None = None, *, tick: float | None = None) -> subprocess.Popen[bytes]:
        """A beat; `seconds` replaces every directory's interval, `tick` only beat's due tick."""
        return self.start(
            "beat", f"--schedule={self.tmp / f'beat{index}'}", "--loglevel=INFO", beat_seconds=seconds,
            tick_seconds=tick,
        )

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        proc.wait(timeout=15)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("proc*.log")))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path / "dirsync.toml", tmp_path)
    yield procs
    procs.stop_all()


def wait_until(predicate: object, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(every)
    return False


def test_sync_directory_delay_is_executed_by_a_worker(setup: tuple[Path, str]) -> None:
    config_path, store_url = setup
    app = create_app(load(config_path))
    app.set_default()  # what `celery -A worker.app shell` does for an admin
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        result = sync_directory.delay("hr").get(timeout=30)
    assert result["status"] == "succeeded"
    assert result["mode"] == "full"
    assert [r.trigger for r in runs(store_url)] == ["task"]
    assert user_count(store_url) == 5


def test_submit_sync_waits_for_the_results(setup: tuple[Path, str]) -> None:
    config_path, store_url = setup
    settings = load(config_path)
    app = create_app(settings)
    # One thread: concurrent writers on SQLite are the PostgreSQL tests' business.
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        results = submit_sync(settings, ["hr", "corp"], wait=True, timeout=30)
    assert [(r["directory"], r["status"]) for r in results] == [("hr", "succeeded"), ("corp", "succeeded")]
    assert user_count(store_url) == 9


def test_submit_sync_without_wait_only_queues(setup: tuple[Path, str], redis_client: redis.Redis) -> None:
    settings = load(setup[0])
    queued = submit_sync(settings, ["hr"], wait=False)
    assert queued[0]["status"] == "queued"
    assert redis_client.llen("celery") == 1


@pytest.mark.postgres
def test_two_cycles_of_one_directory_never_run_together(pg_setup: tuple[Path, str]) -> None:
    config_path, store_url = pg_setup
    app = create_app(load(config_path), cycle=slow_cycle(0.5))
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, loglevel="WARNING"):
        pending = [app.send_task(SYNC_DIRECTORY, args=("hr",)) for _ in range(4)]
        results = [p.get(timeout=30) for p in pending]
    statuses = sorted(r["status"] for r in results)
    assert "succeeded" in statuses and "skipped" in statuses
    assert overlaps(runs(store_url, ran_only=True)) == 0


def test_beat_runs_cycles_at_the_configured_interval(setup: tuple[Path, str], processes: Processes) -> None:
    _, store_url = setup
    processes.worker("w1", concurrency=1, beat_seconds=1.0)  # one writer at a time on SQLite
    processes.beat(1, seconds=1.0)

    def finished_hr_runs() -> list[SyncRun]:
        return [r for r in runs(store_url) if r.directory == "hr" and r.finished_at is not None]

    assert wait_until(lambda: len(finished_hr_runs()) >= 4, timeout=40), processes.logs()
    beat_runs = finished_hr_runs()
    assert all(r.trigger == "beat" for r in beat_runs)
    assert {r.status for r in beat_runs} <= {"succeeded", "skipped"}, [r.error for r in beat_runs]
    assert user_count(store_url) == 9


def test_beat_starts_overdue_directories_at_once_and_restarts_neither_repeat_nor_postpone(
    tmp_path: Path, redis_client: redis.Redis, processes: Processes
) -> None:
    """Directories at their real 40-minute cadence: one overdue for hours, one that never
    ran, one due 20 s after beat starts. Beat (ticking every 2 s) is restarted twice, each
    time without its schedule file, before the third is due."""
    from store.directories import require_directory

    for name in ("hr", "corp", "ops"):
        directory(tmp_path / f"{name}.json", users=2)
    path = settings_file(tmp_path, {name: {"kind": "file", "path": f"{name}.json"} for name in ("hr", "corp", "ops")},
                         lock_ttl_seconds=10)
    settings = load(path)
    prepare_store(settings)
    store = open_store(settings.store.url)
    now = datetime.now(UTC)
    with store.session(write=True) as session:
        require_directory(session, "hr").last_run_at = now - timedelta(hours=3)
        require_directory(session, "ops").last_run_at = now - timedelta(minutes=40) + timedelta(seconds=20)
    store.dispose()
    ops_due = now + timedelta(seconds=20)

    processes.worker("w1", concurrency=1)
    started = datetime.now(UTC)
    beat = processes.beat(1, tick=2.0)

    def directories_ran() -> set[str]:
        return {r.directory for r in runs(settings.store.url) if r.finished_at is not None}

    assert wait_until(lambda: {"hr", "corp"} <= directories_ran(), timeout=60), processes.logs()
    for restart in (2, 3):
        processes.stop(beat)
        beat = processes.beat(restart, tick=2.0)  # a fresh schedule file: beat remembers nothing
        time.sleep(3)
    assert wait_until(lambda: "ops" in directories_ran(), timeout=60), processes.logs()
    time.sleep(6)  # three more ticks: nothing else is due for 40 minutes

    rows = runs(settings.store.url)
    by_dir = {r.directory: r for r in rows}
    assert sorted((r.directory, r.status, r.trigger) for r in rows) == [
        ("corp", "succeeded", "beat"), ("hr", "succeeded", "beat"), ("ops", "succeeded", "beat"),
    ], processes.logs()
    assert by_dir["hr"].started_at - started < timedelta(minutes=1)
    assert by_dir["corp"].started_at - started < timedelta(minutes=1)
    assert by_dir["ops"].started_at - ops_due < timedelta(minutes=1)  # not 40 minutes after a restart
    beats = heartbeat.read(redis_client)
    assert any(name.startswith("w1@") for name in beats.workers) and beats.beat is not None


@pytest.mark.postgres
def test_two_workers_and_two_beats_never_overlap_a_directory(pg_setup: tuple[Path, str], processes: Processes) -> None:
    _, store_url = pg_setup
    for i in (1, 2):
        processes.worker(f"w{i}", concurrency=2, read_delay=0.3, beat_seconds=0.5)
    for i in (1, 2):
        processes.beat(i, seconds=0.5)
    ok = wait_until(lambda: len(runs(store_url, ran_only=True)) >= 30, timeout=60, every=0.5)
    rows = runs(store_url)
    ran = runs(store_url, ran_only=True)
    assert ok, f"only {len(ran)} cycles ran\n{processes.logs()}"
    assert overlaps(ran) == 0
    assert {r.directory for r in ran} == {"hr", "corp"}
    assert {r.status for r in ran} <= {"succeeded", "running"}, [r.error for r in ran]
    print(f"cycles run: {len(ran)}, skipped attempts: {len(rows) - len(ran)}, overlaps: {overlaps(ran)}")


def test_worker_killed_mid_cycle_leaves_a_store_the_next_cycle_repairs(
    setup: tuple[Path, str], processes: Processes, tmp_path: Path
) -> None:
    config_path, store_url = setup
    victim = processes.worker("victim", pool="solo", read_delay=30)
    sent = create_app(load(config_path)).send_task(SYNC_DIRECTORY, args=("hr",))
    assert wait_until(lambda: any(r.status == "running" for r in runs(store_url)), timeout=30), processes.logs()
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    directory(tmp_path / "hr.json", users=7)  # the directory moved on meanwhile

    processes.worker("survivor", pool="solo")
    # The dead worker's lock expires within its TTL (10 s); then a cycle runs again.
    app = create_app(load(config_path))

    def repaired() -> bool:
        result = app.send_task(SYNC_DIRECTORY, args=("hr",)).get(timeout=30)
        return bool(result["status"] == "succeeded")

    assert wait_until(repaired, timeout=40, every=1.0), processes.logs()
    rows = [r for r in runs(store_url) if r.directory == "hr"]
    assert user_count(store_url) == 7
    assert not [r for r in rows if r.status == "running"]
    assert any(r.status == "failed" and "interrupted" in (r.error or "") for r in rows)
    assert sent.id  # the killed cycle's message was acknowledged late, not lost silently


def test_overlap_count_sees_intersecting_runs() -> None:
    """The overlap counter itself: two intersecting runs count once, touching ones do not."""
    from types import SimpleNamespace

    t = datetime(2026, 3, 2, 9, 0)

    def run(directory: str, start: int, end: int) -> SyncRun:
        return SimpleNamespace(  # type: ignore[return-value]
            directory=directory, started_at=t.replace(second=start), finished_at=t.replace(second=end)
        )

    assert overlaps([run("hr", 0, 5), run("hr", 3, 8), run("hr", 8, 9), run("corp", 0, 9)]) == 1


def test_sync_user_provisions_one_user_on_demand_within_two_seconds(setup: tuple[Path, str], tmp_path: Path) -> None:
    config_path, store_url = setup
    app = create_app(load(config_path))
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        app.send_task(SYNC_DIRECTORY, args=("hr",)).get(timeout=30)
        directory(tmp_path / "hr.json", users=8)  # three hires; only one is asked for
        started = time.monotonic()
        result = app.send_task(SYNC_USER, args=("hr", "hr6@example.com")).get(timeout=30)
        elapsed = time.monotonic() - started
    assert result["status"] == "succeeded", result
    assert elapsed < 2.0
    assert user_count(store_url) == 6


def test_sync_all_queues_one_cycle_per_directory(setup: tuple[Path, str]) -> None:
    config_path, store_url = setup
    app = create_app(load(config_path))
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        ids = app.send_task(SYNC_ALL).get(timeout=30)
        results = [app.AsyncResult(i).get(timeout=30) for i in ids]
    assert sorted((r["directory"], r["status"]) for r in results) == [("corp", "succeeded"), ("hr", "succeeded")]
    assert user_count(store_url) == 9
