"""The scheduling rules, as pure functions of state and time (no clock is frozen here)."""

from datetime import UTC, datetime, timedelta

from service.schedule import (
    Cadence,
    DirectoryState,
    Mode,
    after_failure,
    after_success,
    decide,
    due_at,
    is_due,
    is_quarantined,
    next_attempt,
    next_due,
    next_mode,
    overdue_since,
    quarantine_gap,
    resumed,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CADENCE = Cadence(cycle_minutes=40, full_every_hours=24, quarantine_after=3)
H = timedelta(hours=1)


def failed(times: int, *, start: datetime = T0, auth: bool = False) -> DirectoryState:
    state = after_success(DirectoryState(), start - H, Mode.FULL)
    for i in range(times):
        state = after_failure(state, start + i * timedelta(minutes=40), auth=auth)
    return state


def test_directory_never_run_is_due_now_and_full() -> None:
    assert next_due(DirectoryState(), CADENCE, T0) == T0
    assert next_mode(DirectoryState(), CADENCE, T0) is Mode.FULL


def test_next_cycle_is_due_one_interval_after_the_last_run() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    assert next_due(state, CADENCE, T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=40)


def test_overdue_directory_is_due_now() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    later = T0 + timedelta(hours=5)
    assert next_due(state, CADENCE, later) == later


def test_disabled_directory_is_never_due_and_never_runs() -> None:
    state = DirectoryState(enabled=False)
    assert next_due(state, CADENCE, T0) is None
    assert decide(state, CADENCE, T0).run is False
    assert decide(state, CADENCE, T0).reason == "disabled"


def test_cycle_after_a_full_one_is_incremental() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    assert next_mode(state, CADENCE, T0 + timedelta(minutes=40)) is Mode.INCREMENTAL


def test_cycle_is_full_once_full_every_hours_have_passed() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    state = after_success(state, T0 + timedelta(hours=23), Mode.INCREMENTAL)
    assert next_mode(state, CADENCE, T0 + timedelta(hours=23, minutes=59)) is Mode.INCREMENTAL
    assert next_mode(state, CADENCE, T0 + timedelta(hours=24)) is Mode.FULL


def test_cycle_without_watermark_is_full() -> None:
    state = DirectoryState(has_watermark=False, last_full_sync_at=T0)
    assert next_mode(state, CADENCE, T0 + H) is Mode.FULL


def test_fewer_failures_than_quarantine_after_do_not_quarantine() -> None:
    assert quarantine_gap(2, 3) is None
    assert not is_quarantined(failed(2), CADENCE)
    assert decide(failed(2), CADENCE, T0 + 2 * H).run


def test_quarantine_gaps_grow_1h_6h_12h_then_daily() -> None:
    gaps = [quarantine_gap(n, 3) for n in range(3, 9)]
    assert gaps == [H, 6 * H, 12 * H, 24 * H, 24 * H, 24 * H]


def test_quarantine_after_is_configurable() -> None:
    assert quarantine_gap(1, 1) == H
    assert quarantine_gap(4, 5) is None


def test_quarantined_directory_waits_for_its_next_attempt() -> None:
    state = failed(3)
    last = state.last_failure_at
    assert last is not None
    assert next_attempt(state, CADENCE) == last + H
    early = decide(state, CADENCE, last + timedelta(minutes=40))
    assert not early.run
    assert early.reason is not None and early.reason.startswith("quarantined until")
    assert decide(state, CADENCE, last + H).run


def test_next_due_of_a_quarantined_directory_is_its_next_attempt() -> None:
    state = failed(4)
    assert state.last_failure_at is not None
    assert next_due(state, CADENCE, state.last_failure_at) == state.last_failure_at + 6 * H


def test_authentication_failure_quarantines_at_once() -> None:
    state = failed(1, auth=True)
    assert is_quarantined(state, CADENCE)
    assert next_attempt(state, CADENCE) == T0 + H
    assert quarantine_gap(2, 3, auth_failure=True) == 6 * H


def test_success_ends_quarantine() -> None:
    state = after_success(failed(5), T0 + 2 * timedelta(days=1), Mode.INCREMENTAL)
    assert not is_quarantined(state, CADENCE)
    assert next_attempt(state, CADENCE) is None
    assert decide(state, CADENCE, T0 + 2 * timedelta(days=1) + timedelta(minutes=40)).run


def test_success_clears_an_authentication_quarantine() -> None:
    state = after_success(failed(1, auth=True), T0 + 2 * H, Mode.FULL)
    assert not is_quarantined(state, CADENCE)


def test_resume_runs_at_the_next_tick() -> None:
    state = resumed(failed(6))
    assert not is_quarantined(state, CADENCE)
    assert decide(state, CADENCE, T0 + 4 * H).run


def test_quarantined_directory_that_never_recorded_a_time_may_run() -> None:
    state = DirectoryState(consecutive_failures=3)
    assert is_quarantined(state, CADENCE)
    assert next_attempt(state, CADENCE) is None
    assert decide(state, CADENCE, T0).run


def test_due_time_is_the_last_start_plus_the_interval_whoever_started_it() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    assert due_at(state, CADENCE) == T0 + timedelta(minutes=40)
    assert not is_due(state, CADENCE, T0 + timedelta(minutes=39))
    assert is_due(state, CADENCE, T0 + timedelta(minutes=40))


def test_a_directory_that_never_ran_is_due_at_once_with_no_due_time_to_be_late_from() -> None:
    assert due_at(DirectoryState(), CADENCE) is None
    assert is_due(DirectoryState(), CADENCE, T0)
    assert overdue_since(DirectoryState(), CADENCE) is None
    assert overdue_since(DirectoryState(known_since=T0), CADENCE) == T0


def test_a_full_read_falling_due_brings_the_next_cycle_forward_once() -> None:
    cadence = Cadence(cycle_minutes=50, full_every_hours=1)
    state = after_success(after_success(DirectoryState(), T0, Mode.FULL), T0 + timedelta(minutes=50), Mode.INCREMENTAL)
    assert due_at(state, cadence) == T0 + H  # not T0 + 100 minutes
    failed_full = after_failure(state, T0 + H)
    assert due_at(failed_full, cadence) == T0 + H + timedelta(minutes=50)  # a failing full waits its interval


def test_a_second_scheduled_cycle_inside_one_interval_does_not_run() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    early = decide(state, CADENCE, T0 + timedelta(minutes=1))
    assert not early.run and early.reason == "not due until 2026-03-02T09:40:00+00:00"
    assert decide(state, CADENCE, T0 + timedelta(minutes=39, seconds=31)).run  # host clocks differ a little


def test_overdue_since_is_the_due_time_or_the_end_of_quarantine() -> None:
    state = after_success(DirectoryState(), T0, Mode.FULL)
    assert overdue_since(state, CADENCE) == T0 + timedelta(minutes=40)
    quarantined = failed(3)
    assert quarantined.last_failure_at is not None
    assert overdue_since(quarantined, CADENCE) == quarantined.last_failure_at + H
    assert overdue_since(DirectoryState(enabled=False, last_run_at=T0), CADENCE) is None
