"""Runs one cycle of directory `hr` and, if told, SIGKILLs its own process at a chosen
point of the apply: `python -m tests.crash.runner CONFIG [--kill-at N] [--report FILE]`.

Kill points are counted in database events, which makes them deterministic: every
statement and every COMMIT the cycle's own thread sends inside a write transaction,
counted from the moment the connector's read has returned (so the plan and apply that follow are the
same on every run from the same start state). `--kill-at N` dies just before event N
reaches the database: before a chunk's BEGIN, before any of its statements, or before its
COMMIT. Lease heartbeats run on another thread and are not counted.

Without `--kill-at` the cycle runs to its end; `--report` then records its timeline: how
many events it sent, which of them belong to the apply (up to its last chunk's COMMIT),
how many operations each committed chunk had done, and the cycle's status and counts.
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


@dataclass
class Timeline:
    """What an uninterrupted cycle sent to the database after its read."""

    events: int = 0
    apply_events: int = 0  # events up to and including the last chunk's COMMIT
    chunk_ends: list[int] = field(default_factory=list)  # operations done at each chunk's COMMIT
    status: str = ""
    counts: dict[str, int] = field(default_factory=dict)


class ArmAfterRead:
    """The directory's connector, arming `switch` once its read has returned."""

    def __init__(self, inner: Connector, switch: KillSwitch) -> None:
        self.inner = inner
        self.switch = switch

    def read(self, watermark: str | None) -> Snapshot | Changes:
        source = self.inner.read(watermark)
        self.switch.armed = True
        return source

    def close(self) -> None:
        self.inner.close()


class KillSwitch:
    """Counts the cycle's write events after its read, and kills the process at one."""

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.armed = False
        self.timeline = Timeline()
        self.main = threading.main_thread()

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._on_statement)
        event.listen(engine, "commit", self._on_commit)

    def progress(self, phase: str, done: int, total: int) -> None:
        if phase == "apply":
            self.timeline.apply_events = self.timeline.events
            self.timeline.chunk_ends.append(done)

    def _on_statement(self, conn: Connection, *_: Any) -> None:
        self._count(conn)

    def _on_commit(self, conn: Connection) -> None:
        self._count(conn)

    def _count(self, conn: Connection) -> None:
        if not self.armed or threading.current_thread() is not self.main:
            return
        # The cycle's writes run write-locked from their BEGIN (the store's own option);
        # reads of the local state do not, and are not kill points.
        if conn.get_execution_options().get(SQLITE_BEGIN) != "IMMEDIATE":
            return
        self.timeline.events += 1
        if self.timeline.events == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def run(config_path: Path, kill_at: int | None = None, report: Path | None = None) -> Timeline:
    """One cycle of `hr` with the configuration at `config_path` (see the module notes)."""
    settings = config.load(config_path, environ={})
    store = open_store(settings.store.url)
    switch = KillSwitch(kill_at)
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
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    run(args.config, args.kill_at, args.report)


if __name__ == "__main__":
    main()
