"""What `dirsync status` shows: per directory, the truth the store holds plus what comes next.

`collect(settings, store, now)` reads the store once and returns one `DirectoryStatus` per
configured directory (and any the store still knows that the config no longer names);
`render_text` is for an on-call person, `as_json` for machines. The "next" columns come
from `service.schedule`, the same rules the task obeys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from config.settings import Settings
from service import schedule
from service.heartbeat import EVERY as HEARTBEAT_EVERY
from service.heartbeat import Heartbeats

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store import Store

# A due cycle not started this long after its due time is overdue: beat's tick (30 s) and
# a free worker's pickup fit well inside it.
OVERDUE_GRACE = timedelta(minutes=2)
DAEMON_REPORTING = "workers and beat are reporting"
# A heartbeat older than this means the process has stopped reporting (3 missed beats).
HEARTBEAT_STALE = timedelta(seconds=3 * HEARTBEAT_EVERY)


@dataclass(frozen=True, slots=True)
class LastRun:
    id: int | None
    status: str
    mode: str | None
    trigger: str | None
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryStatus:
    name: str
    kind: str
    configured: bool
    enabled: bool
    last_run: LastRun | None
    last_success_at: datetime | None
    next_due: datetime | None
    next_mode: str | None
    watermark_at: datetime | None
    watermark_age_seconds: float | None
    quarantined: bool
    consecutive_failures: int
    auth_failure: bool
    last_error: str | None
    next_attempt: datetime | None
    halted: bool
    # The open staged plan (S2) that `halted` waits on: its run, since when, how many deactivations.
    staged_run_id: int | None = None
    staged_since: datetime | None = None
    staged_deactivations: int = 0
    overdue_seconds: float | None = None
    overdue_reason: str | None = None
    # SCIM directories: when the bearer token expires, and the warning due (30, 7, 1 days).
    scim_token_expires_at: datetime | None = None
    scim_token_warning: str | None = None


def build_status(
    name: str,
    kind: str,
    *,
    configured: bool,
    state: schedule.DirectoryState,
    cadence: schedule.Cadence,
    now: datetime,
    last_run: LastRun | None = None,
    watermark_at: datetime | None = None,
    last_error: str | None = None,
    heartbeats: Heartbeats | None = None,
) -> DirectoryStatus:
    """One directory's status from its recorded state (pure: no store, no clock).

    `heartbeats` (what workers and beat last reported) explains an overdue cycle.
    """
    quarantined = schedule.is_quarantined(state, cadence)
    due = schedule.next_due(state, cadence, now) if configured else None
    late = overdue(state, cadence, now) if configured else None
    return DirectoryStatus(
        name=name,
        kind=kind,
        configured=configured,
        enabled=state.enabled,
        last_run=last_run,
        last_success_at=state.last_success_at,
        next_due=due,
        next_mode=schedule.next_mode(state, cadence, now).value if due is not None else None,
        watermark_at=watermark_at,
        watermark_age_seconds=(now - watermark_at).total_seconds() if watermark_at else None,
        quarantined=quarantined,
        consecutive_failures=state.consecutive_failures,
        auth_failure=state.auth_failure,
        last_error=last_error,
        next_attempt=schedule.next_attempt(state, cadence) if quarantined else None,
        halted=last_run is not None and last_run.status == "halted",
        overdue_seconds=late.total_seconds() if late is not None else None,
        overdue_reason=_late_reason(state, configured, late, heartbeats, now),
    )


def _late_reason(
    state: schedule.DirectoryState, configured: bool, late: timedelta | None,
    heartbeats: Heartbeats | None, now: datetime,
) -> str | None:
    """Why a due cycle has not started: for an overdue one, always; for one that never ran
    and that the store has never seen (so how late it is cannot be told), only when the
    daemon is not reporting."""
    if late is not None:
        return daemon_reason(heartbeats, now)
    if configured and state.enabled and state.last_run_at is None and state.known_since is None:
        reason = daemon_reason(heartbeats, now)
        return None if reason.startswith(DAEMON_REPORTING) else reason
    return None


def overdue(state: schedule.DirectoryState, cadence: schedule.Cadence, now: datetime) -> timedelta | None:
    """How late the next cycle is (beyond `OVERDUE_GRACE`); None when it is not late."""
    since = schedule.overdue_since(state, cadence)
    if since is None or now - since <= OVERDUE_GRACE:
        return None
    return now - since


def daemon_reason(heartbeats: Heartbeats | None, now: datetime) -> str:
    """Why a due cycle may not have started, from the daemon's heartbeats."""
    if heartbeats is None:
        return "the daemon's heartbeats were not read"
    if heartbeats.error:
        return heartbeats.error
    latest = heartbeats.latest_worker
    if latest is None:
        return "no worker has ever reported"
    if now - latest > HEARTBEAT_STALE:
        return f"no worker has reported since {_clock(latest, now)}"
    if heartbeats.beat is None:
        return "beat has never reported"
    if now - heartbeats.beat > HEARTBEAT_STALE:
        return f"beat has not reported since {_clock(heartbeats.beat, now)}"
    return f"{DAEMON_REPORTING}: the workers are busy or the cycle waits in the queue"


def _clock(at: datetime, now: datetime) -> str:
    """A time of day ("10:02Z"), with the date when it is not today."""
    return at.strftime("%H:%MZ") if at.date() == now.date() else at.strftime("%Y-%m-%d %H:%MZ")


def state_of(row: Any) -> schedule.DirectoryState:
    """The scheduling state held by a `directories` row (None: never seen, the defaults)."""
    if row is None:
        return schedule.DirectoryState()
    return schedule.DirectoryState(
        enabled=bool(row.enabled),
        has_watermark=row.watermark is not None,
        last_full_sync_at=row.last_full_sync_at,
        last_run_at=row.last_run_at,
        last_success_at=row.last_success_at,
        consecutive_failures=int(row.consecutive_failures or 0),
        last_failure_at=row.last_failure_at,
        auth_failure=bool(row.auth_failure),
        known_since=row.created_at,
    )


def read_state(store: Store, name: str) -> schedule.DirectoryState:
    """The scheduling state of `name` from its `directories` row (defaults if none yet)."""
    from sqlalchemy import select

    from store.models import Directory

    with store.session() as session:
        row = session.scalars(select(Directory).where(Directory.name == name)).one_or_none()
        return state_of(row)


def read_states(store: Store) -> dict[str, schedule.DirectoryState]:
    """The scheduling state of every directory the store holds, by name (one query)."""
    from sqlalchemy import select

    from store.models import Directory

    with store.session() as session:
        return {row.name: state_of(row) for row in session.scalars(select(Directory))}


def cadence_of(settings: Settings, name: str, every: timedelta | None = None) -> schedule.Cadence:
    """The cadence of a configured directory (defaults for one the config no longer names);
    `every` replaces its `cycle_minutes` (integration tests use seconds)."""
    directory = settings.directories.get(name)
    if directory is None:
        return schedule.Cadence(quarantine_after=settings.safety.quarantine_after, every=every)
    return schedule.Cadence(
        cycle_minutes=directory.cycle_minutes,
        full_every_hours=directory.full_every_hours,
        quarantine_after=settings.safety.quarantine_after,
        every=every,
    )


def collect(
    settings: Settings, store: Store, now: datetime, heartbeats: Heartbeats | None = None
) -> list[DirectoryStatus]:
    """Every directory's status, sorted by name: the configured ones, and any the store
    still holds that the config no longer names. `heartbeats` explain overdue cycles."""
    from sqlalchemy import func, select

    from store import open_plans
    from store.models import Directory, RunMode, SyncRun
    from store.staged import staged_deactivations

    with store.session() as session:
        rows = {row.name: row for row in session.scalars(select(Directory))}
        staged = {p.directory: p for p in open_plans(session)}
        deactivations = staged_deactivations(session, [p.run_id for p in staged.values()])
        # The latest run of each directory that did something: a "skipped" attempt says
        # little about the directory, so it only shows when nothing else ever ran. An
        # admin's action (mode `admin`) is no run of the directory's sync at all.
        cycles = SyncRun.mode != RunMode.ADMIN.value
        latest = (
            select(SyncRun.directory, func.max(SyncRun.id))
            .where(SyncRun.status != "skipped", cycles)
            .group_by(SyncRun.directory)
        )
        ids = {d: i for d, i in session.execute(latest)}
        skipped = select(SyncRun.directory, func.max(SyncRun.id)).where(cycles).group_by(SyncRun.directory)
        for d, i in session.execute(skipped):
            ids.setdefault(d, i)
        runs = {r.directory: r for r in session.scalars(select(SyncRun).where(SyncRun.id.in_(list(ids.values()))))}
    from service.scim_tokens import token_status

    out = []
    for name in sorted(set(settings.directories) | set(rows)):
        row = rows.get(name)
        configured = name in settings.directories
        kind = settings.directories[name].kind if configured else (row.kind if row is not None else "?")
        run = runs.get(name)
        plan = staged.get(name)
        out.append(replace(
            build_status(
                name,
                kind,
                configured=configured,
                state=state_of(row),
                cadence=cadence_of(settings, name),
                now=now,
                last_run=_last_run(run) if run is not None else None,
                watermark_at=row.watermark_at if row is not None and row.watermark is not None else None,
                last_error=row.last_error if row is not None else None,
                heartbeats=heartbeats,
            ),
            # Halted while a staged plan is open, whatever ran since; a decision ends it.
            halted=plan is not None,
            staged_run_id=plan.run_id if plan else None,
            staged_since=plan.created_at if plan else None,
            staged_deactivations=deactivations[plan.run_id] if plan else 0,
        ))
        if kind == "scim":  # pushed by its IdP: no cycle is ever due, none is overdue
            token = token_status(store, name, now)
            out[-1] = replace(out[-1], next_due=None, next_mode=None, overdue_seconds=None, overdue_reason=None,
                              scim_token_expires_at=token.expires_at, scim_token_warning=token.warning)
    return out


def _last_run(run: Any) -> LastRun:
    return LastRun(
        id=run.id,
        status=run.status,
        mode=run.mode,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        counts={k: int(v) for k, v in (run.counts or {}).items()},
        error=run.error,
    )


@dataclass(frozen=True, slots=True)
class DirectoryFact:
    """One directory's current state as the metrics need it."""

    name: str
    last_success_at: datetime | None = None
    quarantined: bool = False
    consecutive_failures: int = 0
    overdue_seconds: float = 0.0
    staged_plans: int = 0


@dataclass(frozen=True, slots=True)
class Facts:
    """Aggregates read from the store: runs by status, finished durations, events."""

    cycles: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (directory, status)
    durations: Mapping[str, Sequence[float]] = field(default_factory=dict)  # directory -> seconds
    operations: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (dir, action, outcome)
    directories: tuple[DirectoryFact, ...] = ()
    rejections: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (directory, reason)
    idp: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (directory, "requests:200" ...)
    worker_heartbeat_ages: Mapping[str, float] = field(default_factory=dict)  # hostname -> seconds
    beat_heartbeat_age: float | None = None


def staged_plans_awaiting(session: Session) -> dict[str, int]:
    """Open staged plans (awaiting `approve` or `reject`) per directory."""
    from store import open_plans

    counts: dict[str, int] = {}
    for plan in open_plans(session):
        counts[plan.directory] = counts.get(plan.directory, 0) + 1
    return counts


def metrics_facts(
    settings: Settings, store: Store, now: datetime | None = None, heartbeats: Heartbeats | None = None
) -> Facts:
    """What the metrics collector needs, read in one pass (aggregated in the database).

    `heartbeats` default to what the broker holds; `now` to the clock.
    """
    from sqlalchemy import func, select

    from reconcile import clock
    from store.models import Directory, RunMode, SyncEvent, SyncRun
    from store.events import REJECT_ACTION
    from service.heartbeat import read_for

    at = now or clock.now()
    beats = heartbeats if heartbeats is not None else read_for(settings)
    with store.session() as session:
        cycles = {
            (d, s): int(n)
            for d, s, n in session.execute(
                select(SyncRun.directory, SyncRun.status, func.count()).where(SyncRun.mode != RunMode.ADMIN.value)
                .group_by(SyncRun.directory, SyncRun.status)
            )
        }
        durations: dict[str, list[float]] = {}
        idp: dict[tuple[str, str], int] = {}
        finished = select(SyncRun.directory, SyncRun.started_at, SyncRun.finished_at, SyncRun.counts).where(
            SyncRun.finished_at.is_not(None), SyncRun.status.not_in(("skipped", "running")),
            SyncRun.mode != RunMode.ADMIN.value,
        )
        for d, started, ended, counts in session.execute(finished):
            if ended is not None:
                durations.setdefault(d, []).append(max((ended - started).total_seconds(), 0.0))
            for key, n in (counts or {}).items():
                if key.startswith(IDP_COUNT_PREFIX):
                    idp[(d, key[len(IDP_COUNT_PREFIX):])] = idp.get((d, key[len(IDP_COUNT_PREFIX):]), 0) + int(n)
        operations: dict[tuple[str, str, str], int] = {}
        rejections: dict[tuple[str, str], int] = {}
        by_outcome = (
            select(SyncRun.directory, SyncEvent.action, SyncEvent.outcome, SyncEvent.reason, func.count())
            .join(SyncRun, SyncEvent.run_id == SyncRun.id)
            .group_by(SyncRun.directory, SyncEvent.action, SyncEvent.outcome, SyncEvent.reason)
        )
        for d, a, o, reason, n in session.execute(by_outcome):
            operations[(d, a, o)] = operations.get((d, a, o), 0) + int(n)
            if a == REJECT_ACTION:
                rejections[(d, reason or "unknown")] = rejections.get((d, reason or "unknown"), 0) + int(n)
        staged = staged_plans_awaiting(session)
        rows = {row.name: row for row in session.scalars(select(Directory))}
    directories = []
    for name in sorted(set(settings.directories) | set(rows)):
        state, cadence = state_of(rows.get(name)), cadence_of(settings, name)
        late = overdue(state, cadence, at) if name in settings.directories else None
        directories.append(DirectoryFact(
            name=name,
            last_success_at=state.last_success_at,
            quarantined=schedule.is_quarantined(state, cadence),
            consecutive_failures=state.consecutive_failures,
            overdue_seconds=late.total_seconds() if late is not None else 0.0,
            staged_plans=staged.get(name, 0),
        ))
    return Facts(
        cycles=cycles, durations=durations, operations=operations, directories=tuple(directories),
        rejections=rejections, idp=idp,
        worker_heartbeat_ages={w: max((at - t).total_seconds(), 0.0) for w, t in beats.workers.items()},
        beat_heartbeat_age=max((at - beats.beat).total_seconds(), 0.0) if beats.beat is not None else None,
    )


# A run's `counts` keys that carry the connector's request statistics, e.g.
# "idp:requests:200", "idp:retries", "idp:rate_limit_waits", "idp:rate_limit_wait_seconds"
# (see worker.metrics); status text leaves out every key with a colon.
IDP_COUNT_PREFIX = "idp:"
