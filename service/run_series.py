"""A directory's runs over time, as the console's chart and table show them: when, how
long, how many operations, how it ended, and who asked for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from store import Store
from store.models import RunMode, SyncRun

# Keys of a run's counts that are not operations of its plan.
_NOT_OPERATIONS = frozenset({"rejected", "dropped"})


@dataclass(frozen=True, slots=True)
class RunPoint:
    id: int
    directory: str
    trigger: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    actor: str | None
    operations: int
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)

    @property
    def is_cycle(self) -> bool:
        """A read of the directory (not an admin's action, not a dry run's absence)."""
        return self.mode != RunMode.ADMIN.value


def operations_of(counts: dict[str, int]) -> int:
    """How many operations a run's plan had: its counts per action (not outcomes, not rejections)."""
    return sum(int(n) for k, n in counts.items() if ":" not in k and k not in _NOT_OPERATIONS)


def recent_runs(store: Store, directory: str, *, limit: int = 50) -> list[RunPoint]:
    """The newest `limit` runs of `directory` (admin actions included), oldest first."""
    query = select(SyncRun).where(SyncRun.directory == directory).order_by(SyncRun.id.desc()).limit(limit)
    with store.session() as session:
        rows = list(session.scalars(query))
    return [_point(run) for run in reversed(rows)]


def run_point(store: Store, run_id: int) -> RunPoint | None:
    """Run `run_id`, if there is one."""
    with store.session() as session:
        run = session.get(SyncRun, run_id)
        return _point(run) if run is not None else None


def _point(run: SyncRun) -> RunPoint:
    counts = {k: int(v) for k, v in (run.counts or {}).items()}
    operations = operations_of(counts) if run.mode != RunMode.ADMIN.value else 0
    return RunPoint(run.id, run.directory, run.trigger, run.mode, run.status, run.started_at, run.finished_at,
                    run.actor, operations, counts, run.error)
