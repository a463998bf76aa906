"""What `status` and the metrics say about the daemon itself: heartbeats, overdue cycles,
manual failures, staged plans, rejections; and run retention (`dirsync prune`)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from config.settings import Settings
from reconcile.cycle import run_cycle
from store import Store, open_store
from store.directories import record_failure
from store.models import Directory, StagedPlan, SyncEvent, SyncRun
from tests.worker.builders import directory, load, prepare_store, settings_file
from tests.worker.conftest import REDIS_URL
from service import heartbeat
from cli.base import Context
from cli.commands.daemon import resume_command, status_command
from cli.commands.prune import prune_command
from service.heartbeat import BEAT_KEY, Heartbeats, WorkerHeartbeat, worker_key
from worker.metrics import exposition
from service.status import collect, metrics_facts
from cli.status_view import render_text
from worker.tasks import prune_store

NOW = datetime(2026, 3, 2, 10, 14, tzinfo=UTC)
MIN = timedelta(minutes=1)


def setup(tmp_path: Path, **extra: dict[str, Any]) -> tuple[Path, Settings, Store]:
    directory(tmp_path / "hr.json", users=3)
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json", "cycle_minutes": 40}, **extra})
    settings = load(path)
    prepare_store(settings)
    return path, settings, open_store(settings.store.url)


def set_row(store: Store, name: str, **values: Any) -> None:
    with store.session(write=True) as session:
        row = session.scalars(select(Directory).where(Directory.name == name)).one()
        for key, value in values.items():
            setattr(row, key, value)


def add_run(store: Store, name: str, status: str, started: datetime, *, trigger: str = "beat",
            events: int = 0, counts: dict[str, int] | None = None) -> int:
    with store.session(write=True) as session:
        run = SyncRun(directory=name, trigger=trigger, mode="full", status=status, started_at=started,
                      finished_at=started + MIN, counts=counts or {})
        session.add(run)
        session.flush()
        for i in range(events):
            session.add(SyncEvent(run_id=run.id, seq=i + 1, action="reject", kind="user", target=f"u{i}",
                                  outcome="rejected", reason="invalid-email", at=started))
        return int(run.id)


def stage(store: Store, run_id: int, name: str = "hr") -> None:
    """An open staged plan for halted run `run_id` (superseding an older open one)."""
    from reconcile.model import Plan
    from store.staged import stage_plan

    with store.session(write=True) as session:
        stage_plan(session, run_id=run_id, directory=name, plan=Plan(name),
                   reason="3 deactivations exceed max_deactivations = 2", limit="max_deactivations")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


# --- overdue, with and without a worker -------------------------------------------------


def test_status_reports_an_overdue_cycle_and_that_no_worker_has_reported(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    set_row(store, "hr", last_run_at=NOW - timedelta(minutes=52))  # due at 09:42, 12 min ago
    stale = Heartbeats(workers={"w1@host": NOW - timedelta(minutes=12)}, beat=NOW - MIN)
    (view,) = collect(settings, store, NOW, heartbeats=stale)
    assert view.overdue_seconds == 12 * 60
    assert view.overdue_reason == "no worker has reported since 10:02Z"
    text = render_text([view], NOW)
    assert text.splitlines()[0] == "hr (file): OVERDUE"
    assert "  overdue by 12m: no worker has reported since 10:02Z" in text.splitlines()
    store.dispose()


def test_status_explains_a_late_cycle_by_what_the_daemon_last_said(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    set_row(store, "hr", last_run_at=NOW - timedelta(hours=1))

    def reason(beats: Heartbeats) -> str | None:
        return collect(settings, store, NOW, heartbeats=beats)[0].overdue_reason

    assert reason(Heartbeats()) == "no worker has ever reported"
    assert reason(Heartbeats(workers={"w1": NOW}, beat=None)) == "beat has never reported"
    assert reason(Heartbeats(workers={"w1": NOW}, beat=NOW - timedelta(hours=2))) == (
        "beat has not reported since 08:14Z")
    assert reason(Heartbeats(error="broker unreachable (ConnectionError)")) == "broker unreachable (ConnectionError)"
    assert "busy" in (reason(Heartbeats(workers={"w1": NOW}, beat=NOW)) or "")
    store.dispose()


def test_a_report_of_an_earlier_day_is_named_with_its_date(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    set_row(store, "hr", last_run_at=NOW - timedelta(hours=12))
    yesterday = Heartbeats(workers={"w1@host": NOW - timedelta(hours=11)}, beat=NOW - MIN)
    (view,) = collect(settings, store, NOW, heartbeats=yesterday)
    assert view.overdue_reason == "no worker has reported since 2026-03-01 23:14Z"
    store.dispose()


def test_a_cycle_due_within_the_grace_is_not_overdue(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    set_row(store, "hr", last_run_at=NOW - timedelta(minutes=41))
    (view,) = collect(settings, store, NOW, heartbeats=Heartbeats())
    assert view.overdue_seconds is None and view.overdue_reason is None
    store.dispose()


def test_a_directory_that_never_ran_is_overdue_from_when_the_store_first_saw_it(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    set_row(store, "hr", created_at=NOW - timedelta(minutes=30))
    (view,) = collect(settings, store, NOW, heartbeats=Heartbeats())
    assert view.overdue_seconds == 30 * 60
    store.dispose()


def test_a_configured_directory_the_store_never_saw_is_overdue_when_no_worker_reports(tmp_path: Path) -> None:
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json"}})
    settings = load(path)
    store = open_store(settings.store.url)  # a fresh store: no row for hr yet
    (view,) = collect(settings, store, NOW, heartbeats=Heartbeats())
    assert (view.overdue_seconds, view.overdue_reason) == (None, "no worker has ever reported")
    text = render_text([view], NOW)
    assert text.splitlines()[0] == "hr (file): OVERDUE"
    assert "  overdue:     never run, due since it was configured; no worker has ever reported" in text
    healthy = Heartbeats(workers={"w1": NOW}, beat=NOW)
    (view,) = collect(settings, store, NOW, heartbeats=healthy)  # the tick will send it
    assert view.overdue_reason is None and render_text([view], NOW).splitlines()[0] == "hr (file): never run"
    store.dispose()


@pytest.mark.redis
def test_status_and_metrics_with_no_worker_running_report_overdue(tmp_path: Path, redis_client: redis.Redis) -> None:
    path, settings, store = setup(tmp_path, corp={"kind": "file", "path": "corp.json"})
    now = datetime.now(UTC)
    set_row(store, "hr", last_run_at=now - timedelta(hours=2))
    set_row(store, "corp", created_at=now - timedelta(hours=1))
    heartbeat.write(redis_client, worker_key("w1@gone"), now - timedelta(hours=1, minutes=30))

    out = CliRunner().invoke(status_command, ["--json"], obj=Context(str(path)))
    assert out.exit_code == 0, out.output
    data = {d["name"]: d for d in json.loads(out.output)}
    reported = now - timedelta(hours=1, minutes=30)
    # Before 01:30 UTC the last report was yesterday, and the reason names its date.
    stamp = reported.strftime("%H:%MZ" if reported.date() == now.date() else "%Y-%m-%d %H:%MZ")
    assert data["hr"]["overdue_reason"] == f"no worker has reported since {stamp}"
    assert data["hr"]["overdue_seconds"] >= 80 * 60
    assert data["corp"]["overdue_seconds"] >= 60 * 60

    values = samples(exposition(metrics_facts(settings, store)).decode())
    assert values[("dirsync_overdue_seconds", (("directory", "hr"),))] >= 80 * 60
    assert values[("dirsync_worker_heartbeat_age_seconds", (("worker", "w1@gone"),))] >= 90 * 60
    assert ("dirsync_beat_heartbeat_age_seconds", ()) not in values  # beat never reported
    store.dispose()


# --- heartbeats -------------------------------------------------------------------------


@pytest.mark.redis
def test_heartbeats_round_trip_through_redis(redis_client: redis.Redis) -> None:
    heartbeat.write(redis_client, worker_key("w1@a"), NOW)
    heartbeat.write(redis_client, worker_key("w2@b"), NOW - MIN)
    heartbeat.write(redis_client, BEAT_KEY, NOW - 2 * MIN)
    beats = heartbeat.read(redis_client)
    assert beats.workers == {"w1@a": NOW, "w2@b": NOW - MIN}
    assert beats.beat == NOW - 2 * MIN and beats.latest_worker == NOW


@pytest.mark.redis
def test_a_worker_heartbeat_thread_reports_until_stopped(redis_client: redis.Redis) -> None:
    beat = WorkerHeartbeat(redis.Redis.from_url(REDIS_URL), "w9@host", every=0.05)
    beat.start()
    deadline = time.monotonic() + 5
    while "w9@host" not in heartbeat.read(redis_client).workers and time.monotonic() < deadline:
        time.sleep(0.02)
    beat.stop()
    assert "w9@host" in heartbeat.read(redis_client).workers


def test_heartbeats_of_a_broker_that_is_not_redis_are_an_explained_absence(tmp_path: Path) -> None:
    path = settings_file(tmp_path, {}, broker_url="memory://")
    beats = heartbeat.read_for(load(path))
    assert beats.error == "the broker is not Redis: no worker can report"


# --- metrics ----------------------------------------------------------------------------


def test_metrics_show_staged_plans_rejections_idp_requests_and_a_never_succeeded_directory(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path, corp={"kind": "file", "path": "corp.json"})
    add_run(store, "hr", "succeeded", NOW - 3 * MIN, events=2,
            counts={"idp:requests:200": 5, "idp:requests:429": 1, "idp:retries": 1, "idp:rate_limit_waits": 1})
    stage(store, add_run(store, "hr", "halted", NOW - 2 * MIN, counts={"idp:requests:200": 4}))
    stage(store, add_run(store, "hr", "halted", NOW - MIN))  # supersedes the first
    set_row(store, "hr", last_success_at=NOW - 3 * MIN, last_run_at=NOW - MIN)
    values = samples(exposition(metrics_facts(settings, store, NOW, Heartbeats(workers={"w1": NOW - MIN}))).decode())

    assert values[("dirsync_staged_plans", (("directory", "hr"),))] == 1
    assert values[("dirsync_staged_plans", (("directory", "corp"),))] == 0
    assert values[("dirsync_rejections_total", (("directory", "hr"), ("reason", "invalid-email")))] == 2
    assert values[("dirsync_idp_requests_total", (("code", "200"), ("directory", "hr")))] == 9
    assert values[("dirsync_idp_requests_total", (("code", "429"), ("directory", "hr")))] == 1
    assert values[("dirsync_idp_retries_total", (("directory", "hr"),))] == 1
    assert values[("dirsync_idp_rate_limit_waits_total", (("directory", "hr"),))] == 1
    assert values[("dirsync_last_success_timestamp_seconds", (("directory", "corp"),))] == 0
    assert values[("dirsync_last_success_timestamp_seconds", (("directory", "hr"),))] == (NOW - 3 * MIN).timestamp()
    assert values[("dirsync_worker_heartbeat_age_seconds", (("worker", "w1"),))] == 60
    store.dispose()


def test_a_rejected_plan_no_longer_awaits_approval(tmp_path: Path) -> None:
    from store.models import StagedStatus
    from store.staged import decide

    _, settings, store = setup(tmp_path)
    run_id = add_run(store, "hr", "halted", NOW - 3 * MIN)
    stage(store, run_id)
    with store.session(write=True) as session:
        assert decide(session, run_id, StagedStatus.REJECTED, by="admin")
    values = samples(exposition(metrics_facts(settings, store, NOW, Heartbeats())).decode())
    assert values[("dirsync_staged_plans", (("directory", "hr"),))] == 0
    store.dispose()


# --- manual runs do not quarantine -------------------------------------------------------


def test_failures_of_manual_runs_are_recorded_but_never_quarantine(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    with store.session(write=True) as session:
        for _ in range(5):
            record_failure(session, "hr", error="HTTP 401 from the identity provider", auth=True, trigger="cli")
    (view,) = collect(settings, store, NOW, heartbeats=Heartbeats())
    assert not view.quarantined and view.consecutive_failures == 0 and not view.auth_failure
    assert view.last_error == "HTTP 401 from the identity provider"
    with store.session(write=True) as session:
        record_failure(session, "hr", error="HTTP 401", auth=True, trigger="beat")
    (view,) = collect(settings, store, NOW, heartbeats=Heartbeats())
    assert view.quarantined and view.auth_failure
    store.dispose()


def test_status_shows_a_failed_manual_run_without_calling_the_directory_failing(tmp_path: Path) -> None:
    _, settings, store = setup(tmp_path)
    add_run(store, "hr", "failed", NOW - 2 * MIN, trigger="cli")
    set_row(store, "hr", last_run_at=NOW - 2 * MIN)
    text = render_text(collect(settings, store, NOW, heartbeats=Heartbeats()), NOW)
    assert text.splitlines()[0] == "hr (file): ok (last manual run failed)"
    assert "(a manual run: its failure does not count towards quarantine)" in text
    store.dispose()


@pytest.mark.redis
def test_resume_async_clears_the_quarantine_and_queues_a_cycle(tmp_path: Path, redis_client: redis.Redis) -> None:
    path, _, store = setup(tmp_path)
    set_row(store, "hr", consecutive_failures=4, last_failure_at=NOW)
    out = CliRunner().invoke(resume_command, ["hr", "--async"], obj=Context(str(path)))
    assert out.exit_code == 0, out.output
    assert "hr resumed after 4 failed cycle(s)" in out.output and "cycle queued" in out.output
    assert redis_client.llen("celery") == 1
    with store.session() as session:
        assert session.scalars(select(Directory)).one().consecutive_failures == 0
    store.dispose()


# --- retention ----------------------------------------------------------------------------


def runs_left(store: Store) -> list[tuple[str, str]]:
    with store.session() as session:
        return [(r.directory, r.status) for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]


def test_prune_keeps_the_last_run_of_every_directory_and_every_staged_plans_run(tmp_path: Path) -> None:
    _, _, store = setup(tmp_path, corp={"kind": "file", "path": "corp.json"})
    old = NOW - timedelta(days=100)
    add_run(store, "hr", "succeeded", old, events=3)
    stage(store, add_run(store, "hr", "halted", old + MIN, events=1))
    add_run(store, "hr", "halted", old + MIN)  # an old halt without a plan goes
    add_run(store, "hr", "failed", old + 2 * MIN, events=2)
    add_run(store, "hr", "succeeded", NOW - timedelta(days=1), events=1)
    add_run(store, "corp", "succeeded", old, events=1)  # corp's only run: kept however old
    add_run(store, "corp", "succeeded", old + MIN)
    add_run(store, "corp", "skipped", old + 2 * MIN)

    assert prune_store(store, 90, NOW) == {"runs": 4, "events": 6}
    assert runs_left(store) == [("hr", "halted"), ("hr", "succeeded"), ("corp", "succeeded"), ("corp", "skipped")]
    with store.session() as session:
        assert len(list(session.scalars(select(SyncEvent)))) == 2
        assert [p.run_id for p in session.scalars(select(StagedPlan))] == [2]
    assert prune_store(store, 90, NOW) == {"runs": 0, "events": 0}
    store.dispose()


def test_dirsync_prune_deletes_what_is_older_than_the_days_given(tmp_path: Path) -> None:
    path, _, store = setup(tmp_path)
    now = datetime.now(UTC)
    add_run(store, "hr", "succeeded", now - timedelta(days=10), events=2)
    add_run(store, "hr", "succeeded", now - timedelta(days=5))
    add_run(store, "hr", "succeeded", now - timedelta(days=1))
    out = CliRunner().invoke(prune_command, [], obj=Context(str(path)))
    assert out.exit_code == 0 and "deleted 0 run(s) and 0 event(s) older than 90 days" in out.output
    out = CliRunner().invoke(prune_command, ["--days", "7", "--json"], obj=Context(str(path)))
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"keep_runs_days": 7, "runs": 1, "events": 2}
    assert len(runs_left(store)) == 2
    store.dispose()


def test_a_manual_cycle_that_fails_leaves_its_run_for_status(tmp_path: Path) -> None:
    """A failed `dirsync sync` is a `failed` run with trigger `cli` that status shows."""
    _, settings, store = setup(tmp_path)
    (tmp_path / "hr.json").unlink()
    result = run_cycle(settings, "hr", trigger="cli", store=store)
    assert result.status == "failed"
    (view,) = collect(settings, store, NOW, heartbeats=Heartbeats())
    assert view.last_run is not None and (view.last_run.status, view.last_run.trigger) == ("failed", "cli")
    store.dispose()
