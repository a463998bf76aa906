"""Directory rows (switch, watermark, health) and run rows with their events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from reconcile.model import Kind, Plan, Rejection
from store import (
    Store,
    StoreError,
    ensure_directory,
    finish_run,
    get_directory,
    list_events,
    list_runs,
    record_failure,
    record_rejections,
    record_run_started,
    record_staged,
    record_success,
    reset_failures,
    set_enabled,
    start_run,
)
from tests.store.builders import create_user, deactivate

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def test_ensure_directory_creates_an_enabled_row_once(store: Store) -> None:
    with store.session() as session:
        first = ensure_directory(session, "okta", "okta", {"org_url": "https://x.okta.com"})
    with store.session() as session:
        again = ensure_directory(session, "okta", "okta")

    assert again.id == first.id
    assert again.enabled and again.settings == {"org_url": "https://x.okta.com"}
    assert again.consecutive_failures == 0 and again.watermark is None


def test_disabling_and_enabling_a_directory(store: Store) -> None:
    with store.session() as session:
        ensure_directory(session, "okta", "okta")
        set_enabled(session, "okta", False)
    with store.session() as session:
        assert get_directory(session, "okta").enabled is False  # type: ignore[union-attr]


def test_disable_clears_a_watermark_a_cycle_committed_after_the_row_was_read(store: Store) -> None:
    """The switch locks and reads the row again: a cycle's success that lands between the
    switch's first read and its write is not kept by a write of the stale copy."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite write transactions take the write lock first: they never interleave")
    with store.session() as session:
        ensure_directory(session, "okta", "okta")
    with store.session() as switch:
        seen = get_directory(switch, "okta")  # held: the session keeps this copy
        assert seen is not None and seen.watermark is None
        with store.session() as cycle:
            record_success(cycle, "okta", watermark="w1", full=True)
        set_enabled(switch, "okta", False).watermark = None
    with store.session() as session:
        row = get_directory(session, "okta")
        assert row is not None and not row.enabled and row.watermark is None


def test_unknown_directory_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="'nope' is not in the store"), store.session() as session:
        set_enabled(session, "nope", True)


def test_success_stores_the_watermark_and_clears_the_failure_streak(store: Store) -> None:
    with freeze_time(T0), store.session() as session:
        ensure_directory(session, "okta", "okta")
        record_failure(session, "okta", error="timeout")
        record_failure(session, "okta", error="401", auth=True)
    with freeze_time(T0 + timedelta(hours=1)), store.session() as session:
        record_success(session, "okta", watermark="2026-11-23T06:59:00Z", full=True)
    with store.session() as session:
        row = get_directory(session, "okta")

    assert row is not None
    assert row.watermark == "2026-11-23T06:59:00Z"
    assert row.watermark_at == row.last_full_sync_at == row.last_success_at == T0 + timedelta(hours=1)
    assert (row.consecutive_failures, row.auth_failure) == (0, False)
    assert row.last_failure_at == T0


def test_incremental_success_leaves_the_last_full_sync_alone(store: Store) -> None:
    with freeze_time(T0), store.session() as session:
        ensure_directory(session, "okta", "okta")
        record_success(session, "okta", watermark="w1", full=True)
    with freeze_time(T0 + timedelta(minutes=40)), store.session() as session:
        row = record_success(session, "okta", watermark="w2", full=False)

    assert row.last_full_sync_at == T0
    assert row.last_success_at == T0 + timedelta(minutes=40)


def test_failures_count_up_and_keep_the_error_and_watermark(store: Store) -> None:
    with store.session() as session:
        ensure_directory(session, "okta", "okta")
        record_success(session, "okta", watermark="w1", full=True)
        record_failure(session, "okta", error="timeout")
        row = record_failure(session, "okta", error="HTTP 401", auth=True)

    assert (row.consecutive_failures, row.last_error, row.auth_failure, row.watermark) == (2, "HTTP 401", True, "w1")


def test_reset_failures_ends_the_quarantine(store: Store) -> None:
    with store.session() as session:
        ensure_directory(session, "okta", "okta")
        record_failure(session, "okta", error="HTTP 401", auth=True)
        row = reset_failures(session, "okta")

    assert (row.consecutive_failures, row.auth_failure) == (0, False)


def test_run_started_is_noted_on_the_directory(store: Store) -> None:
    with freeze_time(T0), store.session() as session:
        ensure_directory(session, "okta", "okta")
        record_run_started(session, "okta")
        row = get_directory(session, "okta")

    assert row is not None and row.last_run_at == T0


def test_a_run_is_started_then_finished_with_counts_and_error(store: Store) -> None:
    with freeze_time(T0), store.session() as session:
        run_id = start_run(session, directory="okta", trigger="beat", mode="incremental")
    with freeze_time(T0 + timedelta(seconds=5)), store.session() as session:
        finish_run(session, run_id, "succeeded", {"applied": 3, "failed": 1}, "1 operation failed")
    with store.session() as session:
        (run,) = list_runs(session)

    assert (run.directory, run.trigger, run.mode, run.status) == ("okta", "beat", "incremental", "succeeded")
    assert (run.started_at, run.finished_at) == (T0, T0 + timedelta(seconds=5))
    assert run.counts == {"applied": 3, "failed": 1} and run.error == "1 operation failed"
    assert (run.dry_run, run.allow_deactivations) == (False, False)


def test_runs_are_listed_newest_first_and_limited(store: Store) -> None:
    with store.session() as session:
        ids = [start_run(session, directory=d, trigger="cli", mode="full") for d in ("okta", "entra", "okta")]

    with store.session() as session:
        assert [r.id for r in list_runs(session, limit=2)] == [ids[2], ids[1]]
        assert [r.id for r in list_runs(session, directory="okta")] == [ids[2], ids[0]]


def test_a_halted_plan_is_recorded_as_staged_events(store: Store) -> None:
    plan = Plan(
        directory="okta",
        operations=(create_user("u1", "ann@x.com"), deactivate(7)),
        rejections=(Rejection(Kind.USER, "bad", "invalid-email"),),
    )
    with store.session() as session:
        run_id = start_run(session, directory="okta", trigger="cli", mode="full")
        record_staged(session, run_id, plan)
    with store.session() as session:
        events = [(e.seq, e.action, e.outcome) for e in list_events(session, run_id)]

    assert events == [(1, "reject", "rejected"), (2, "create-user", "staged"), (3, "deactivate-user", "staged")]


def test_rejections_recorded_later_follow_earlier_events(store: Store) -> None:
    with store.session() as session:
        run_id = start_run(session, directory="okta", trigger="cli", mode="full")
        record_rejections(session, run_id, [Rejection(Kind.USER, "a", "invalid-email")])
        record_rejections(session, run_id, [Rejection(Kind.GROUP, "b" * 30, "name-too-long", "too long")])
    with store.session() as session:
        events = [(e.seq, e.kind, e.target, e.reason, e.detail) for e in list_events(session, run_id)]

    assert events == [(1, "user", "a", "invalid-email", None), (2, "group", "b" * 30, "name-too-long", "too long")]
