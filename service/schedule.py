"""When a directory runs next, and how: pure functions of its recorded state and a time.

Nothing here reads a clock, the store or the configuration file: callers pass the
directory's state (`DirectoryState`, built from its `directories` row), its cadence
(`Cadence`, from its settings) and "now". The task, `dirsync status` and the tests all ask
the same questions here, so they cannot disagree.

Quarantine (DESIGN §5 S3): after `quarantine_after` consecutive failed cycles, the next
attempt waits 1 h after the last failure, then 6 h, then 12 h, then a day for every later
failure. An authentication failure quarantines at once (the first gap is 1 h). A successful
cycle, or `dirsync resume`, resets the failure count and so ends the quarantine.

Due times (what beat dispatches, what `status` calls overdue) come from the record alone:
the last cycle's start plus `cycle_minutes`, earlier when a full read falls due first, later
while quarantined. A directory that never ran is due at once. Nothing depends on when beat
started, so restarting beat neither postpones a cycle nor repeats one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

QUARANTINE_GAPS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
)

# A scheduled cycle that starts this much before its due time still runs: the host that
# dispatched it and the one running it may disagree on the time by a few seconds.
EARLY_TOLERANCE = timedelta(seconds=30)


class Mode(str, enum.Enum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a directory runs: every `cycle_minutes`, a full read every `full_every_hours`."""

    cycle_minutes: int = 40
    full_every_hours: int = 24
    quarantine_after: int = 3
    every: timedelta | None = None  # replaces cycle_minutes (integration tests use seconds)

    @property
    def interval(self) -> timedelta:
        return self.every if self.every is not None else timedelta(minutes=self.cycle_minutes)


@dataclass(frozen=True, slots=True)
class DirectoryState:
    """What the store records about one directory (its `directories` row).

    A directory the store has never seen is `DirectoryState()`: enabled, never run.
    """

    enabled: bool = True
    has_watermark: bool = False
    last_full_sync_at: datetime | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    last_failure_at: datetime | None = None
    auth_failure: bool = False
    known_since: datetime | None = None  # when the store first saw it (overdue of a never-run one)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a scheduled (beat) trigger should run a cycle now; `reason` says why not."""

    run: bool
    reason: str | None = None
    next_attempt: datetime | None = None


def quarantine_gap(failures: int, quarantine_after: int, auth_failure: bool = False) -> timedelta | None:
    """The wait after the latest failure, or None when the directory is not quarantined.

    Promise: None below `quarantine_after` failures (unless `auth_failure`); otherwise
    1 h, 6 h, 12 h, then 1 day for each further failure, never shorter than the one before.
    """
    if auth_failure:
        steps = max(failures, 1) - 1
    elif failures >= quarantine_after:
        steps = failures - quarantine_after
    else:
        return None
    return QUARANTINE_GAPS[min(steps, len(QUARANTINE_GAPS) - 1)]


def is_quarantined(state: DirectoryState, cadence: Cadence) -> bool:
    """True when failures (or an auth failure) hold the directory back from its usual cadence."""
    return quarantine_gap(state.consecutive_failures, cadence.quarantine_after, state.auth_failure) is not None


def next_attempt(state: DirectoryState, cadence: Cadence) -> datetime | None:
    """When a quarantined directory may be tried again: its last failure plus the gap.

    None when it is not quarantined, or when no failure or run time is recorded (then
    nothing holds it back and it may run at once).
    """
    gap = quarantine_gap(state.consecutive_failures, cadence.quarantine_after, state.auth_failure)
    if gap is None:
        return None
    since = state.last_failure_at or state.last_run_at
    return since + gap if since is not None else None


def next_mode(state: DirectoryState, cadence: Cadence, now: datetime) -> Mode:
    """Full when there is no watermark, no full read yet, or the last full read is
    `full_every_hours` old; incremental otherwise. (`run_cycle` makes the same choice.)
    """
    if not state.has_watermark or state.last_full_sync_at is None:
        return Mode.FULL
    if now - state.last_full_sync_at >= timedelta(hours=cadence.full_every_hours):
        return Mode.FULL
    return Mode.INCREMENTAL


def due_at(state: DirectoryState, cadence: Cadence) -> datetime | None:
    """When the next cycle falls due by the record alone; None when disabled or never run
    (a never-run directory is due at once, with no time to be late from).

    Promise: the last run's start plus the interval, or the time the next full read falls
    due when that comes first and no cycle started since; never before a quarantine's next
    attempt.
    """
    if not state.enabled or state.last_run_at is None:
        return None
    due = state.last_run_at + cadence.interval
    if state.last_full_sync_at is not None:
        full_due = state.last_full_sync_at + timedelta(hours=cadence.full_every_hours)
        # Only when no cycle started since the full read fell due: a failing full cycle
        # must wait its interval like any other, not be retried on every tick.
        if state.last_run_at < full_due < due:
            due = full_due
    attempt = next_attempt(state, cadence)
    return attempt if attempt is not None and attempt > due else due


def next_due(state: DirectoryState, cadence: Cadence, now: datetime) -> datetime | None:
    """When the next cycle is due: None if disabled; the quarantine's next attempt if later
    than the regular cadence; `now` when overdue or never run.
    """
    if not state.enabled:
        return None
    due = due_at(state, cadence)
    if due is None:
        attempt = next_attempt(state, cadence)
        return attempt if attempt is not None and attempt > now else now
    return max(now, due)


def is_due(state: DirectoryState, cadence: Cadence, now: datetime) -> bool:
    """True when a scheduled cycle should start now (what beat's tick dispatches)."""
    due = next_due(state, cadence, now)
    return due is not None and due <= now


def overdue_since(state: DirectoryState, cadence: Cadence) -> datetime | None:
    """Since when the next cycle has been due: its due time, or for a directory that never
    ran, when the store first saw it. None when disabled or unknown."""
    if not state.enabled:
        return None
    if state.last_run_at is None:
        attempt = next_attempt(state, cadence)
        if state.known_since is None:
            return attempt
        return max(state.known_since, attempt) if attempt is not None else state.known_since
    return due_at(state, cadence)


def decide(state: DirectoryState, cadence: Cadence, now: datetime) -> Decision:
    """Should a scheduled trigger run a cycle now?

    Promise: a disabled directory never runs ("disabled"); a quarantined one runs only once
    its next attempt time has come ("quarantined until ..."); one whose last cycle started
    less than an interval ago does not run again ("not due until ...", e.g. a second beat or
    a repeated message), allowing `EARLY_TOLERANCE` (at most a quarter interval) for clocks
    of different hosts; anything else runs.
    """
    if not state.enabled:
        return Decision(run=False, reason="disabled")
    attempt = next_attempt(state, cadence)
    if attempt is not None and now < attempt:
        return Decision(
            run=False,
            reason=f"quarantined until {attempt.isoformat(timespec='seconds')}",
            next_attempt=attempt,
        )
    due = due_at(state, cadence)
    if due is not None and now + min(EARLY_TOLERANCE, cadence.interval / 4) < due:
        return Decision(run=False, reason=f"not due until {due.isoformat(timespec='seconds')}", next_attempt=attempt)
    return Decision(run=True, next_attempt=attempt)


def after_failure(state: DirectoryState, at: datetime, *, auth: bool = False) -> DirectoryState:
    """The state a failed cycle at `at` leaves (what `run_cycle` records); for simulations."""
    return _replace(
        state,
        last_run_at=at,
        consecutive_failures=state.consecutive_failures + 1,
        last_failure_at=at,
        auth_failure=state.auth_failure or auth,
    )


def after_success(state: DirectoryState, at: datetime, mode: Mode) -> DirectoryState:
    """The state a successful cycle at `at` leaves: failures cleared, watermark present."""
    return _replace(
        state,
        has_watermark=True,
        last_run_at=at,
        last_success_at=at,
        last_full_sync_at=at if mode is Mode.FULL else state.last_full_sync_at,
        consecutive_failures=0,
        auth_failure=False,
    )


def resumed(state: DirectoryState) -> DirectoryState:
    """The state after `dirsync resume`: failures forgotten, so the next tick runs."""
    return _replace(state, consecutive_failures=0, auth_failure=False)


def _replace(state: DirectoryState, **changes: object) -> DirectoryState:
    return replace(state, **changes)  # type: ignore[arg-type]
