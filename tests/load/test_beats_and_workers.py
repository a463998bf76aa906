"""Two beats and three workers on the real Redis, two directories, a minute of cycles.

Both beats tick; both directories are due every BEAT_SECONDS, and every read takes READ_DELAY
(longer than the interval), so without the directory lock cycles would overlap all the
time. What is asserted comes from the store (PostgreSQL, shared by every worker):

- no two cycles of one directory that held the lock overlap in time (`sync_runs`
  started_at .. finished_at);
- every cycle beat scheduled is accounted for by exactly one run row: `succeeded`, or
  `skipped` with its reason.

How the accounting works, and why it is complete: the workers run `tests.load.celery_app`,
which records the id of every `sync_directory` message a due tick publishes, in Redis,
from Celery's own publish signals in the publishing process (see that module). Every task returns
its run's id (`run_id`) to the result backend, and every path of the task writes a run
row first: a cycle writes one when it starts (succeeded or failed at the end), a held
lock writes a `skipped` row saying so, and beat's own skip (disabled, quarantined) writes
a `skipped` row with the reason. (Disabled and quarantined directories are not sent at all.)
So each published id must lead, through its result, to
one distinct `trigger = beat` row with the same directory and status, and the beat rows
must be exactly those: a task that expired in the queue, failed, or was lost shows up as
an id without a result or a row, and a row no published task explains shows up as extra.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import _empty_postgres
from tests.load.cluster import (
    Cluster,
    active_users,
    beat_runs,
    overlaps,
    read_ledger,
    wait_until,
)
from tests.worker.builders import directory, load, prepare_store, settings_file
from worker.app import create_app
from worker.tasks import EXPIRED

REDIS_URL = "redis://127.0.0.1:6379/14"  # the load test's own database; only it is flushed
LEDGER = "load:beat"
RUN_SECONDS = 60
BEAT_SECONDS = 2.0
READ_DELAY = 2.5
WORKERS, CONCURRENCY = 3, 2
ALREADY_RUNNING = "skipped: a cycle of this directory is already running"
NOT_DUE = "not due until "


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("postgres_database")  # skips when PostgreSQL is down
    _empty_postgres(url)
    return url


@pytest.fixture
def cluster(tmp_path: Path, redis_db: redis.Redis, store_url: str) -> Iterator[Cluster]:
    directory(tmp_path / "hr.json", users=20)
    directory(tmp_path / "corp.json", users=12)
    config_path = settings_file(
        tmp_path,
        {"hr": {"kind": "file", "path": "hr.json"}, "corp": {"kind": "file", "path": "corp.json"}},
        broker_url=REDIS_URL, lock_ttl_seconds=30, store_url=store_url,
    )
    prepare_store(load(config_path))
    running = Cluster(config_path, tmp_path, ledger=LEDGER)
    try:
        yield running
    finally:
        running.stop_all()


def results_of(app: Any, ids: list[str]) -> dict[str, Any]:
    """The finished tasks' results by id (what `sync_directory` returned, or the error)."""
    out = {}
    for task_id in ids:
        result = app.AsyncResult(task_id)
        if result.ready():
            out[task_id] = result.result if result.successful() else f"{result.state}: {result.result!r}"
    return out


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_two_beats_and_three_workers_account_for_every_scheduled_cycle_and_never_overlap(
    cluster: Cluster, redis_db: redis.Redis, store_url: str, tmp_path: Path
) -> None:
    app = create_app(load(cluster.config_path))
    # Sized so that messages rarely wait a whole interval in the queue (six pool processes,
    # at most two long cycles at a time); one that does is accounted for by its skipped row.
    for n in range(WORKERS):
        cluster.worker(f"w{n}", concurrency=CONCURRENCY, read_delay=READ_DELAY, seconds=BEAT_SECONDS)
    # Workers first: a message beat sends expires after one interval in the queue.
    assert wait_until(lambda: len(app.control.ping(timeout=1.0)) >= WORKERS, timeout=60), cluster.logs()
    for n in range(2):
        cluster.beat(n, seconds=BEAT_SECONDS)
    started = time.monotonic()
    for users in (25, 30):  # the directories change while the cycles run
        time.sleep(RUN_SECONDS / 3)
        directory(tmp_path / "hr.json", users=users)
        directory(tmp_path / "corp.json", users=users - 8)
    time.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - started)))
    cluster.stop_beats()
    ledger = read_ledger(redis_db, LEDGER)
    ids = sorted(ledger.sent) + sorted(ledger.cut_short)
    everything_done = wait_until(lambda: set(ledger.sent) <= set(results_of(app, ids)), timeout=60)
    results = results_of(app, ids)
    cluster.stop_all()
    runs = beat_runs(store_url)

    unanswered = sorted(set(ledger.sent) - set(results))
    # A message that waited longer than its interval (a pool process starting cold on a
    # loaded machine) is discarded by Celery; its run row is the `skipped` one that says so.
    expired = {i for i, r in results.items() if r == "REVOKED: TaskRevokedError('expired')"}
    not_a_run = {i: r for i, r in results.items()
                 if i not in expired and (not isinstance(r, dict) or r.get("run_id") is None)}
    rows = {r.id: r for r in runs}
    expired_rows = {r.id for r in runs if r.trigger == "beat" and r.error == EXPIRED}
    beat_rows = {r.id for r in runs if r.trigger == "beat"} - expired_rows
    claimed = Counter(r["run_id"] for r in results.values() if isinstance(r, dict))
    mismatched = [
        (task_id, r) for task_id, r in results.items() if isinstance(r, dict) and (
            r["run_id"] not in rows
            or (rows[r["run_id"]].directory, rows[r["run_id"]].status, rows[r["run_id"]].trigger)
            != (ledger.sent.get(task_id, ledger.cut_short.get(task_id)), r["status"], "beat")
        )
    ]
    ran = [r for r in runs if r.status != "skipped"]
    skipped = [r for r in runs if r.status == "skipped" and r.id not in expired_rows]
    print(
        f"\nload: {len(ledger.sent)} cycles scheduled ({len(ledger.cut_short)} cut short by shutdown),"
        f" {len(ran)} run ({dict(Counter(r.directory for r in ran))}), {len(skipped)} skipped"
        f" ({dict(Counter(r.error for r in skipped))}), {len(expired)} expired in the queue, overlaps {overlaps(ran)},"
        f" accounted {len(ledger.sent) - len(unanswered) - len(not_a_run)}/{len(ledger.sent)}"
    )

    assert everything_done and not unanswered, f"{len(unanswered)} scheduled cycles never ended\n{cluster.logs()}"
    assert not_a_run == {}, "tasks that ended without a run row"
    assert len(expired_rows) == len(expired), "expired cycles without their skipped row, or rows without one"
    assert mismatched == [], "results whose run row is missing or says otherwise"
    assert [run_id for run_id, n in claimed.items() if n > 1] == [], "one run row claimed by two tasks"
    assert beat_rows == set(claimed), f"beat run rows no published task explains: {sorted(beat_rows - set(claimed))}"
    assert overlaps(ran) == 0
    assert {r.status for r in ran} == {"succeeded"}, [(r.id, r.status, r.error) for r in ran if r.status != "succeeded"]
    # Rare: the tick sends neither a directory whose cycle holds its lock nor one sent in
    # this interval; a message that races a cycle anyway is skipped with one of these reasons.
    assert all((r.error or "").startswith((ALREADY_RUNNING, NOT_DUE)) for r in skipped)
    assert min(Counter(r.directory for r in ran).values()) >= RUN_SECONDS / (READ_DELAY + BEAT_SECONDS)
    assert len(Counter(r.directory for r in ran)) == 2
    assert active_users(store_url) == {"hr": 30, "corp": 22}


def test_overlap_count_sees_intersecting_and_unfinished_runs() -> None:
    """The overlap counter itself: intersecting runs of one directory count, touching
    ones and other directories' do not, and a run never finished overlaps what follows."""
    from datetime import datetime
    from types import SimpleNamespace

    t = datetime(2026, 3, 2, 9, 0)

    def run(name: str, start: int, end: int | None) -> Any:
        return SimpleNamespace(directory=name, started_at=t.replace(second=start),
                               finished_at=None if end is None else t.replace(second=end))

    assert overlaps([run("hr", 0, 5), run("hr", 3, 8), run("hr", 8, 9), run("corp", 0, 9)]) == 1
    assert overlaps([run("hr", 0, None), run("hr", 30, 31)]) == 1


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_scheduled_cycle_that_expires_in_the_queue_still_leaves_a_run_row(
    cluster: Cluster, redis_db: redis.Redis, store_url: str
) -> None:
    """One busy worker, one beat: messages wait in the queue longer than beat's `expires`
    (one interval) and Celery discards them. Each must still be accounted for in
    `sync_runs`, as a `skipped` row with its reason, like every other scheduled cycle."""
    app = create_app(load(cluster.config_path))
    cluster.worker("busy", concurrency=1, read_delay=3.0, seconds=1.0)
    assert wait_until(lambda: len(app.control.ping(timeout=1.0)) >= 1, timeout=60), cluster.logs()
    cluster.beat(0, seconds=1.0)
    time.sleep(12)
    cluster.stop_beats()
    ledger = read_ledger(redis_db, LEDGER)
    ids = sorted(ledger.sent)
    wait_until(lambda: set(ids) <= set(results_of(app, ids)), timeout=60)
    results = results_of(app, ids)
    cluster.stop_all()
    runs = [r for r in beat_runs(store_url) if r.trigger == "beat"]

    expired = [r for r in results.values() if not isinstance(r, dict)]
    expired_rows = [r for r in runs if r.status == "skipped" and "expired" in (r.error or "")]
    print(f"\nexpiry: {len(ids)} scheduled, {len(runs)} run rows, {len(expired_rows)} of them expired in the queue")

    assert len(runs) == len(ids), f"{len(ids) - len(runs)} scheduled cycles left no run row"
    assert expired and len(expired_rows) == len(expired)
