"""Celery beats and workers as real processes on the load test's app, and what they left
behind: the beat ledger, the task results, the `sync_runs` rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from store import open_store
from store.models import SyncRun, User

ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """Worker and beat subprocesses; each stopped by its own pid."""

    def __init__(self, config_path: Path, folder: Path, *, ledger: str) -> None:
        self.config_path = config_path
        self.folder = folder
        self.ledger = ledger
        self.workers: list[subprocess.Popen[bytes]] = []
        self.beats: list[subprocess.Popen[bytes]] = []

    def _start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DIRSYNC_", "TEST_", "LOAD_"))}
        log = (self.folder / f"{args[0]}{len(self.workers) + len(self.beats)}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.load.celery_app", *args],
            cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
            env={**base, "DIRSYNC_CONFIG": str(self.config_path), "PYTHONPATH": str(ROOT), **env},
        )

    def worker(self, name: str, *, concurrency: int, read_delay: float, seconds: float) -> None:
        """A worker whose directories run every `seconds`. Workers run beat's due tick, so
        they publish the scheduled `sync_directory` messages: the ledger is theirs."""
        self.workers.append(self._start(
            ["worker", f"--hostname={name}@%h", "--pool=prefork", f"--concurrency={concurrency}",
             "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            {"TEST_READ_DELAY": str(read_delay), "TEST_BEAT_SECONDS": str(seconds), "LOAD_LEDGER": self.ledger},
        ))

    def beat(self, index: int, *, seconds: float) -> None:
        self.beats.append(self._start(
            ["beat", f"--schedule={self.folder / f'beat{index}'}", "--loglevel=INFO"],
            {"TEST_BEAT_SECONDS": str(seconds)},
        ))

    def stop_beats(self) -> None:
        """Stop the beats, then give the due ticks already queued time to be taken or to
        expire (a quarter interval), so the ledger holds every scheduled cycle."""
        _stop(self.beats)
        time.sleep(1.0)

    def stop_all(self) -> None:
        _stop(self.beats + self.workers)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.folder.glob("*.log")))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass(frozen=True)
class Ledger:
    """What the due ticks published: directory by task id, handed to the broker (`sent`)
    or cut short by a shutdown before it reached the broker (`cut_short`); `sent_at`: when
    the broker had each message sent (Unix seconds)."""

    sent: dict[str, str]
    cut_short: dict[str, str]
    sent_at: dict[str, float]


def read_ledger(client: redis.Redis, ledger: str) -> Ledger:
    def entries(stage: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in client.lrange(f"{ledger}:{stage}", 0, -1)]

    before = {row["id"]: row["directory"] for row in entries("before")}
    after = entries("after")
    sent = {row["id"]: row["directory"] for row in after}
    return Ledger(sent=sent, cut_short={i: d for i, d in before.items() if i not in sent},
                  sent_at={row["id"]: row["at"] for row in after})


def beat_runs(store_url: str) -> list[SyncRun]:
    store = open_store(store_url)
    try:
        with store.session() as session:
            return list(session.scalars(select(SyncRun).order_by(SyncRun.started_at, SyncRun.id)))
    finally:
        store.dispose()


def active_users(store_url: str) -> dict[str, int]:
    """Active users per managing directory."""
    store = open_store(store_url)
    try:
        with store.session() as session:
            rows = session.execute(
                select(User.managed_by, func.count()).where(User.active).group_by(User.managed_by)
            )
            return {str(name): int(n) for name, n in rows}
    finally:
        store.dispose()


def overlaps(runs: list[SyncRun]) -> int:
    """Pairs of runs of one directory whose [started_at, finished_at] intersect; a run
    still open counts as lasting forever."""
    spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for run in runs:
        spans.setdefault(run.directory, []).append((run.started_at, run.finished_at))
    count = 0
    for intervals in spans.values():
        intervals.sort(key=lambda s: s[0])
        for i, (_, end) in enumerate(intervals):
            for other_start, _ in intervals[i + 1:]:
                if end is not None and other_start >= end:
                    break
                count += 1
    return count


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
