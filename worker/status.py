"""What `dirsync status` shows: per directory, the truth the store holds plus what comes next.

`collect(settings, store, now)` reads the store once and returns one `DirectoryStatus` per
configured directory (and any the store still knows that the config no longer names);
`render_text` is for an on-call person, `as_json` for machines. The "next" columns come
from `worker.schedule`, the same rules the task obeys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from config.settings import Settings
from worker import schedule

if TYPE_CHECKING:
    from store import Store
    from worker.metrics import Facts


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
) -> DirectoryStatus:
    """One directory's status from its recorded state (pure: no store, no clock)."""
    quarantined = schedule.is_quarantined(state, cadence)
    due = schedule.next_due(state, cadence, now) if configured else None
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
    )


def as_json(statuses: list[DirectoryStatus]) -> str:
    """Machine-readable: a JSON list, times as ISO 8601 UTC, sorted by name."""

    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.dumps([asdict(s) for s in statuses], default=encode, indent=2, sort_keys=True)


def render_text(statuses: list[DirectoryStatus], now: datetime) -> str:
    """For a person: one block per directory, the problem first when there is one."""
    if not statuses:
        return "No directories configured."
    blocks = []
    for s in statuses:
        state = _headline(s)
        lines = [f"{s.name} ({s.kind}): {state}"]
        if s.quarantined:
            why = "authentication refused" if s.auth_failure else f"{s.consecutive_failures} failed cycles in a row"
            lines.append(f"  quarantined: {why}")
            if s.last_error:
                lines.append(f"  last error:  {s.last_error}")
            lines.append(f"  next try:    {_when(s.next_attempt, now)}   (dirsync resume {s.name} to retry now)")
        elif s.consecutive_failures:
            lines.append(f"  failing:     {s.consecutive_failures} failed cycle(s) in a row; last error: {s.last_error}")
        if s.kind == "scim":
            expires = _when(s.scim_token_expires_at, now) if s.scim_token_expires_at else "no token"
            lines.append(f"  SCIM token:  expires {expires}")
            if s.scim_token_warning:
                lines.append(f"  warning:     {s.scim_token_warning}")
        if s.halted and s.kind == "scim":
            lines.append(f"  halted:      a held request; see `dirsync scim held {s.name}`")
        elif s.halted:
            lines.append(
                f"  halted:      too many deactivations; approve with `dirsync sync {s.name} --allow-deactivations`"
                " or fix the directory"
            )
        r = s.last_run
        if r is None:
            lines.append("  last run:    never")
        else:
            counts = _counts(r.counts)
            mode = f" {r.mode}" if r.mode else ""
            lines.append(f"  last run:    {r.status}{mode}, {_when(r.finished_at or r.started_at, now)} ({counts})")
            if r.error and r.status not in ("succeeded",) and not s.quarantined:
                lines.append(f"  reason:      {r.error}")
        lines.append(f"  succeeded:   {_when(s.last_success_at, now) if s.last_success_at else 'never'}")
        if s.next_due is not None:
            lines.append(f"  next cycle:  {s.next_mode}, {_when(s.next_due, now)}")
        if s.watermark_at is not None:
            lines.append(f"  watermark:   {_age(s.watermark_age_seconds)} old")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _counts(counts: dict[str, int]) -> str:
    """Operations by action; the apply outcomes only when some failed."""
    parts = [f"{k} {v}" for k, v in sorted(counts.items()) if v and ":" not in k]
    if counts.get("outcome:failed"):
        parts.append(f"{counts['outcome:failed']} failed")
    return ", ".join(parts) or "no changes"


def _headline(s: DirectoryStatus) -> str:
    if not s.configured:
        return "NOT CONFIGURED (known to the store only)"
    if not s.enabled:
        return "DISABLED"
    if s.quarantined:
        return "QUARANTINED"
    if s.halted:
        return "HALTED (waiting for approval)"
    if s.consecutive_failures:
        return "FAILING"
    if s.last_run is None:
        return "never run"
    return "ok"


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "now"
    stamp = at.strftime("%Y-%m-%d %H:%M:%SZ")
    delta = (at - now).total_seconds()
    if abs(delta) < 1:
        return f"{stamp} (now)"
    return f"{stamp} (in {_age(delta)})" if delta > 0 else f"{stamp} ({_age(-delta)} ago)"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    left = timedelta(seconds=int(seconds))
    days, rest = left.days, left.seconds
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


# --- reading the store -------------------------------------------------------------------
# Plain queries on the store's models; nothing here writes.


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
    )


def read_state(store: Store, name: str) -> schedule.DirectoryState:
    """The scheduling state of `name` from its `directories` row (defaults if none yet)."""
    from sqlalchemy import select

    from store.models import Directory

    with store.session() as session:
        row = session.scalars(select(Directory).where(Directory.name == name)).one_or_none()
        return state_of(row)


def cadence_of(settings: Settings, name: str) -> schedule.Cadence:
    """The cadence of a configured directory (defaults for one the config no longer names)."""
    directory = settings.directories.get(name)
    if directory is None:
        return schedule.Cadence(quarantine_after=settings.safety.quarantine_after)
    return schedule.Cadence(
        cycle_minutes=directory.cycle_minutes,
        full_every_hours=directory.full_every_hours,
        quarantine_after=settings.safety.quarantine_after,
    )


def collect(settings: Settings, store: Store, now: datetime) -> list[DirectoryStatus]:
    """Every directory's status, sorted by name: the configured ones, and any the store
    still holds that the config no longer names."""
    from sqlalchemy import func, select

    from store.models import Directory, SyncRun

    with store.session() as session:
        rows = {row.name: row for row in session.scalars(select(Directory))}
        # The latest run of each directory that did something: a "skipped" attempt says
        # little about the directory, so it only shows when nothing else ever ran.
        latest = (
            select(SyncRun.directory, func.max(SyncRun.id))
            .where(SyncRun.status != "skipped")
            .group_by(SyncRun.directory)
        )
        ids = {d: i for d, i in session.execute(latest)}
        skipped = select(SyncRun.directory, func.max(SyncRun.id)).group_by(SyncRun.directory)
        for d, i in session.execute(skipped):
            ids.setdefault(d, i)
        runs = {r.directory: r for r in session.scalars(select(SyncRun).where(SyncRun.id.in_(list(ids.values()))))}
    from dataclasses import replace

    from service.scim_tokens import token_status

    out = []
    for name in sorted(set(settings.directories) | set(rows)):
        row = rows.get(name)
        configured = name in settings.directories
        kind = settings.directories[name].kind if configured else (row.kind if row is not None else "?")
        run = runs.get(name)
        out.append(
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
            )
        )
        if kind == "scim":  # pushed by its IdP: no cycle is ever due
            token = token_status(store, name, now)
            out[-1] = replace(out[-1], next_due=None, next_mode=None, scim_token_expires_at=token.expires_at,
                              scim_token_warning=token.warning)
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


def metrics_facts(settings: Settings, store: Store) -> Facts:
    """What the metrics collector needs, read in one pass (aggregated in the database)."""
    from sqlalchemy import func, select

    from store.models import Directory, SyncEvent, SyncRun
    from worker.metrics import DirectoryFact, Facts

    with store.session() as session:
        cycles = {
            (d, s): int(n)
            for d, s, n in session.execute(
                select(SyncRun.directory, SyncRun.status, func.count()).group_by(SyncRun.directory, SyncRun.status)
            )
        }
        durations: dict[str, list[float]] = {}
        finished = select(SyncRun.directory, SyncRun.started_at, SyncRun.finished_at).where(
            SyncRun.finished_at.is_not(None), SyncRun.status.not_in(("skipped", "running"))
        )
        for d, started, ended in session.execute(finished):
            if ended is not None:
                durations.setdefault(d, []).append(max((ended - started).total_seconds(), 0.0))
        operations = {
            (d, a, o): int(n)
            for d, a, o, n in session.execute(
                select(SyncRun.directory, SyncEvent.action, SyncEvent.outcome, func.count())
                .join(SyncRun, SyncEvent.run_id == SyncRun.id)
                .group_by(SyncRun.directory, SyncEvent.action, SyncEvent.outcome)
            )
        }
        directories = tuple(
            DirectoryFact(
                name=row.name,
                last_success_at=row.last_success_at,
                quarantined=schedule.is_quarantined(state_of(row), cadence_of(settings, row.name)),
                consecutive_failures=int(row.consecutive_failures or 0),
            )
            for row in session.scalars(select(Directory).order_by(Directory.name))
        )
    return Facts(cycles=cycles, durations=durations, operations=operations, directories=directories)
