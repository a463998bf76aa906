"""Runs one cycle of directory `hr` and, if told, SIGKILLs its own process at a chosen
point of the apply:
`python -m tests.crash.runner CONFIG [--kill-at N | --kill-at-step N] [--report FILE]`.

Kill points are counted from the moment the connector's read has returned (the plan and
apply that follow are the same on every run from the same start state), on the cycle's
own thread only (lease heartbeats run on another), and inside write transactions only
(the apply's chunks, and the run's bookkeeping; reads of the local state are not kill
points). Two counters, both deterministic:

- events (`--kill-at N`): every statement and every COMMIT sent to the database. The
  process dies just before event N reaches it: before a chunk's BEGIN, before any of its
  statements, or before its COMMIT.
- steps (`--kill-at-step N`, SQLite only): SQLite's progress handler, called every
  STEP virtual-machine instructions. The process dies in the middle of a statement:
  half-way through a bulk insert of 2,000 rows, say, with part of the uncommitted
  transaction already spilled to the WAL file.

Without a kill point the cycle runs to its end; `--report` then records its timeline:
how many events and steps it took, how many of them belong to the apply (up to its last
chunk's COMMIT), how many operations each committed chunk had done, and the cycle's
status and counts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event

import config
from connectors import Connector, build_connector
from reconcile.cycle import run_cycle
from reconcile.model import Changes, Snapshot
from store import open_store
from store.engine import SQLITE_BEGIN
from tests.crash.builders import DIRECTORY

STEP = 1000  # SQLite virtual-machine instructions per progress-handler call


@dataclass
class Timeline:
    """What an uninterrupted cycle sent to the database after its read."""

    events: int = 0
    apply_events: int = 0  # events up to and including the last chunk's COMMIT
    steps: int = 0
    apply_steps: int = 0  # steps up to the end of the last chunk's COMMIT
    chunk_ends: list[int] = field(default_factory=list)  # operations done at each chunk's COMMIT
    status: str = ""
    counts: dict[str, int] = field(default_factory=dict)


class ArmAfterRead:
    """The directory's connector, arming `switch` once its read has returned."""

    def __init__(self, inner: Connector, switch: KillSwitch) -> None:
        self.inner = inner
        self.switch = switch

    def read(self, watermark: str | None, progress: object = None) -> Snapshot | Changes:
        source = self.inner.read(watermark)
        self.switch.armed = True
        return source

    def close(self) -> None:
        self.inner.close()


class KillSwitch:
    """Counts the cycle's write events and steps after its read, and kills the process at
    the chosen one."""

    def __init__(self, kill_at: int | None = None, kill_at_step: int | None = None) -> None:
        self.kill_at = kill_at
        self.kill_at_step = kill_at_step
        self.armed = False
        self.writing = False
        self.timeline = Timeline()
        self.main = threading.main_thread()

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._on_statement)
        event.listen(engine, "commit", self._on_commit)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "checkout", self._on_checkout)

    def progress(self, phase: str, done: int, total: int) -> None:
        if phase == "apply":
            self.timeline.apply_events = self.timeline.events
            self.timeline.apply_steps = self.timeline.steps
            self.timeline.chunk_ends.append(done)

    def _on_statement(self, conn: Connection, *_: Any) -> None:
        self._count(conn)

    def _on_commit(self, conn: Connection) -> None:
        self._count(conn)

    def _on_checkout(self, dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_progress_handler(self._on_step, STEP)

    def _count(self, conn: Connection) -> None:
        if not self.armed or threading.current_thread() is not self.main:
            return
        # The cycle's writes run write-locked from their BEGIN (the store's own option).
        self.writing = conn.get_execution_options().get(SQLITE_BEGIN) == "IMMEDIATE"
        if not self.writing:
            return
        self.timeline.events += 1
        if self.timeline.events == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def _on_step(self) -> int:
        if self.armed and self.writing and threading.current_thread() is self.main:
            self.timeline.steps += 1
            if self.timeline.steps == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
        return 0  # go on


def run(
    config_path: Path, kill_at: int | None = None, report: Path | None = None, *, kill_at_step: int | None = None
) -> Timeline:
    """One cycle of `hr` with the configuration at `config_path` (see the module notes)."""
    settings = config.load(config_path, environ={})
    store = open_store(settings.store.url)
    switch = KillSwitch(kill_at, kill_at_step)
    switch.attach(store.engine)
    try:
        connector = ArmAfterRead(build_connector(settings, settings.directory(DIRECTORY)), switch)
        result = run_cycle(settings, DIRECTORY, store=store, connector=connector, progress=switch.progress)
    finally:
        store.dispose()
    switch.timeline.status = result.status
    switch.timeline.counts = dict(result.counts)
    if report is not None:
        report.write_text(json.dumps(asdict(switch.timeline)))
    return switch.timeline


def read_report(path: Path) -> Timeline:
    return Timeline(**json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    run(args.config, args.kill_at, args.report, kill_at_step=args.kill_at_step)


if __name__ == "__main__":
    main()
