"""Kill a cycle at a point, run the next one, and say how the store differs from an
uninterrupted run.

Start states are built once and cloned for every kill point: a SQLite file is copied, a
PostgreSQL database is created from a template database. The killed cycle runs in a child
process (forked, or a fresh interpreter running `tests.crash.runner`); the next cycle runs
here, with the application clock moved past the lease TTL, which is when a real worker's
next cycle would find the dead process's lease expired.
"""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from freezegun import freeze_time
from psycopg import sql
from sqlalchemy import func, select

from reconcile import clock
from reconcile.cycle import RunResult, run_cycle
from store import (
    INTERRUPTED,
    Store,
    SyncEvent,
    SyncRun,
    export_state,
    get_directory,
    open_store,
)
from tests.crash import runner
from tests.crash.builders import DIRECTORY, load, settings_file

ROOT = Path(__file__).resolve().parents[2]
Export = dict[str, list[dict[str, Any]]]

FORKSERVER = multiprocessing.get_context("forkserver")
# Children fork from a clean server that has the runner imported once, not from this process.
FORKSERVER.set_forkserver_preload(["tests.crash.runner"])


class SqliteStates:
    """Start states as SQLite files in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def new(self, name: str) -> str:
        return f"sqlite:///{self.folder / (name + '.db')}"

    def clone(self, template: str, name: str) -> str:
        source = Path(template.removeprefix("sqlite:///"))
        target = self.folder / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
            if source.with_name(source.name + suffix).exists():
                shutil.copyfile(source.with_name(source.name + suffix), target.with_name(target.name + suffix))
        return f"sqlite:///{target}"

    def close(self) -> None:
        pass


class PostgresStates:
    """Start states as databases `<prefix>_<name>` on the server at `admin` (conninfo);
    all of them dropped by `close`."""

    def __init__(self, admin: str, prefix: str) -> None:
        self.admin = psycopg.connect(admin, autocommit=True, connect_timeout=3)
        self.prefix = prefix
        self.names: set[str] = set()
        info = self.admin.info
        self.base = f"postgresql+psycopg://{info.user}@{info.host}:{info.port}"

    def new(self, name: str) -> str:
        return self._create(name, None)

    def clone(self, template: str, name: str) -> str:
        return self._create(name, template.rsplit("/", 1)[1])

    def _create(self, name: str, template: str | None) -> str:
        db = f"{self.prefix}_{name}"
        self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db))
        if template is not None:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.admin.execute(create)
        self.names.add(db)
        return f"{self.base}/{db}"

    def close(self) -> None:
        for db in self.names:
            self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        self.admin.close()


States = SqliteStates | PostgresStates


@contextmanager
def opened(url: str) -> Iterator[Store]:
    store = open_store(url)
    try:
        yield store
    finally:
        store.dispose()


@dataclass(frozen=True)
class KillPoint:
    """Where the killed cycle dies: before database event `at`, or at SQLite step `at`
    (see tests.crash.runner)."""

    at: int
    step: bool = False

    def __str__(self) -> str:
        return f"{'step' if self.step else 'event'} {self.at}"

    def options(self) -> list[str]:
        return ["--kill-at-step" if self.step else "--kill-at", str(self.at)]


@dataclass(frozen=True)
class Reference:
    """An uninterrupted cycle from a start state: its timeline and the store it left."""

    start: str  # store URL of the start state (a template: never written)
    directory_file: Path
    timeline: runner.Timeline
    export: Export
    watermark: str | None

    @property
    def whole_chunks(self) -> set[int]:
        """How many events a killed run may have left: none, or whole chunks (the plan's
        rejections are written with the first chunk)."""
        rejected = self.timeline.counts.get("rejected", 0)
        return {0} | {rejected + done for done in self.timeline.chunk_ends}


def build_state(states: States, name: str, build: Callable[[Store], None]) -> str:
    """A migrated store `name`, shaped by `build`, closed and ready to clone."""
    url = states.new(name)
    store = open_store(url, check_schema=False)
    try:
        store.upgrade()
        build(store)
    finally:
        store.dispose()
    return url


def point_config(folder: Path, store_url: str, directory_file: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return settings_file(folder, store_url, directory_file)


def run_child(config_path: Path, kill: KillPoint | None, report: Path | None, *, fresh: bool) -> int:
    """Run the cycle in a child process; its exit code (-SIGKILL when it was killed).

    `fresh`: a new interpreter (`python -m tests.crash.runner`), as a worker would be;
    otherwise a fork of this process, which skips the imports (and is what PostgreSQL's
    driver would not like after this process has connected, hence `fresh` there).
    """
    if fresh:
        args = [sys.executable, "-m", "tests.crash.runner", str(config_path)]
        if kill is not None:
            args += kill.options()
        if report is not None:
            args += ["--report", str(report)]
        done = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, timeout=300)
        if done.returncode not in (0, -signal.SIGKILL):
            raise AssertionError(f"the cycle process failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
        return done.returncode
    # forkserver, not fork: by now this test process runs other threads (heartbeats, pools)
    # whose locks a forked child could inherit held, and hang on.
    child = FORKSERVER.Process(
        target=runner.run,
        args=(config_path, None if kill is None or kill.step else kill.at, report),
        kwargs={"kill_at_step": kill.at if kill is not None and kill.step else None},
    )
    child.start()
    child.join(timeout=300)
    if child.exitcode is None:
        child.kill()
        raise AssertionError(f"the cycle process did not end within 300 s (kill point {kill})")
    return child.exitcode


def reference(states: States, start: str, directory_file: Path, folder: Path, *, fresh: bool) -> Reference:
    """Run the cycle uninterrupted from a clone of `start` and record what it did."""
    url = states.clone(start, "reference")
    config_path = point_config(folder, url, directory_file)
    report = folder / "timeline.json"
    code = run_child(config_path, None, report, fresh=fresh)
    assert code == 0, f"the uninterrupted cycle exited with {code}"
    timeline = runner.read_report(report)
    assert timeline.status == "succeeded", timeline
    with opened(url) as store, store.session() as session:
        export, watermark = export_state(session), _watermark(session)
    return Reference(start, directory_file, timeline, export, watermark)


def next_cycle(store: Store, config_path: Path) -> RunResult:
    """The next cycle, once the dead process's lease (TTL `lock_ttl_seconds`) has expired."""
    settings = load(config_path)
    later = clock.now() + timedelta(seconds=settings.worker.lock_ttl_seconds + 1)
    with freeze_time(later, tick=True):
        return run_cycle(settings, DIRECTORY, store=store)


def kill_and_recover(states: States, ref: Reference, kill: KillPoint, folder: Path, *, fresh: bool) -> list[str]:
    """Kill a cycle from `ref`'s start state at `kill`, run the next cycle, and return
    what is wrong (empty when the store converged and the runs say so)."""
    url = states.clone(ref.start, "point")
    config_path = point_config(folder, url, ref.directory_file)
    with opened(url) as store, store.session() as session:
        runs_before = _run_ids(session)
    code = run_child(config_path, kill, None, fresh=fresh)
    if code != -signal.SIGKILL:
        return [f"kill point {kill} was never reached: the cycle exited with {code}"]
    problems: list[str] = []
    with opened(url) as store:
        with store.session() as session:
            killed = _new_runs(session, runs_before)
            events = session.scalar(
                select(func.count()).select_from(SyncEvent).where(SyncEvent.run_id.in_([r.id for r in killed]))
            )
        if [r.status for r in killed] != ["running"]:
            problems.append(f"the killed cycle left runs {[(r.id, r.status) for r in killed]}, not one running run")
        if events not in ref.whole_chunks:
            problems.append(f"the killed run left {events} events, not whole chunks {sorted(ref.whole_chunks)}")

        result = next_cycle(store, config_path)

        if result.status != "succeeded" or result.error:
            problems.append(f"the next cycle ended {result.status}: {result.error}")
        with store.session() as session:
            runs = _new_runs(session, runs_before)
            export, watermark = export_state(session), _watermark(session)
        statuses = [(r.status, r.error) for r in runs]
        if statuses != [("failed", INTERRUPTED), ("succeeded", None)]:
            problems.append(f"runs after the next cycle: {statuses}")
        if export != ref.export:
            problems.append(differences(ref.export, export))
        if watermark != ref.watermark:
            problems.append(f"watermark {watermark!r}, expected {ref.watermark!r}")
    return [f"kill point {kill}: {p}" for p in problems]


def differences(expected: Export, actual: Export) -> str:
    """A short account of how two exports differ, in the terms the tests promise."""
    def by_key(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(str(row[key]).lower(), []).append(row)
        return out

    lines: list[str] = []
    for kind, key in (("users", "email"), ("groups", "name")):
        want, got = by_key(expected[kind], key), by_key(actual[kind], key)
        if dupes := sorted(k for k, rows in got.items() if len(rows) > 1):
            lines.append(f"duplicate {kind}: {dupes[:5]}")
        if missing := sorted(want.keys() - got.keys()):
            lines.append(f"missing {kind} ({len(missing)}): {missing[:5]}")
        if extra := sorted(got.keys() - want.keys()):
            lines.append(f"unexpected {kind} ({len(extra)}): {extra[:5]}")
        changed = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
        for k in changed[:5]:
            w, g = want[k][0], got[k][0]
            fields = {f: (w.get(f), g.get(f)) for f in w if w.get(f) != g.get(f) and f != "members"}
            if kind == "groups":
                lost = sorted(set(w["members"]) - set(g["members"]))
                added = sorted(set(g["members"]) - set(w["members"]))
                if lost:
                    fields["lost members"] = (len(lost), lost[:3])
                if added:
                    fields["extra members"] = (len(added), added[:3])
            lines.append(f"{kind[:-1]} {k}: {fields}")
        if len(changed) > 5:
            lines.append(f"... and {len(changed) - 5} more {kind} differ")
    if expected["invites"] != actual["invites"]:
        lines.append(f"invites differ: {expected['invites'][:3]} != {actual['invites'][:3]}")
    return "store differs from the uninterrupted run: " + "; ".join(lines or ["(order only)"])


def _watermark(session: Any) -> str | None:
    row = get_directory(session, DIRECTORY)
    return None if row is None else row.watermark


def _run_ids(session: Any) -> set[int]:
    return set(session.scalars(select(SyncRun.id)))


def _new_runs(session: Any, before: set[int]) -> list[SyncRun]:
    return [r for r in session.scalars(select(SyncRun).order_by(SyncRun.id)) if r.id not in before]
