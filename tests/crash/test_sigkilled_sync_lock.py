"""A `dirsync sync` SIGKILLed in the middle of its apply leaves its lease behind; the very
next `dirsync sync` of that directory runs and converges: at once on the same host (the
holder's process is gone), after the lease's TTL when the holder is another host's.

Real processes and real time, no frozen clock: the killed sync and the ones after it are
the `dirsync` command, started the way an admin (or cron) would start it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from reconcile import clock
from store import INTERRUPTED, Lease, Store, SyncEvent, User, current_holder, list_runs, open_store
from store.models import leases
from tests.crash.builders import DIRECTORY, USERS, large_org, write_directory

ROOT = Path(__file__).resolve().parents[2]
LEASE = f"cycle:{DIRECTORY}"


def _dirsync_command() -> str:
    path = shutil.which("dirsync", path=str(Path(sys.executable).parent)) or shutil.which("dirsync")
    if path is None:
        pytest.fail("the dirsync command is not installed: pip install -e '.[test]'")
    return path


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class Workspace:
    """A large file directory, a store, and a dirsync.toml with lease TTL `ttl`."""

    def __init__(self, folder: Path, store_url: str, ttl: int) -> None:
        self.store_url = store_url
        directory_file = write_directory(folder / "org.json", large_org())
        self.config = folder / "dirsync.toml"
        self.config.write_text(
            f'[store]\nurl = "{store_url}"\n[worker]\nlock_ttl_seconds = {ttl}\n'
            f'[directories.{DIRECTORY}]\nkind = "file"\npath = "{directory_file}"\n'
        )
        if not store_url.startswith("sqlite"):
            self.dirsync("db", "upgrade", check=True)

    def command(self, *args: str) -> list[str]:
        return [_dirsync_command(), "--config", str(self.config), *args]

    def dirsync(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=600, env=_environment())
        if check and done.returncode != 0:
            raise AssertionError(f"dirsync {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
        return done

    def sync(self, *args: str) -> dict[str, Any]:
        """`dirsync sync hr --json ARGS`: the directory's result."""
        done = self.dirsync("sync", DIRECTORY, "--json", *args)
        results = json.loads(done.stdout)
        assert len(results) == 1, done.stdout
        result: dict[str, Any] = results[0]
        return result

    def kill_sync_mid_apply(self) -> int:
        """Start `dirsync sync hr`, SIGKILL it once its first apply chunk has committed (its
        progress line says so), and return its pid."""
        sync = subprocess.Popen(self.command("sync", DIRECTORY), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=_environment())
        assert sync.stderr is not None
        seen: list[str] = []
        try:
            for line in sync.stderr:
                seen.append(line)
                if line.strip().startswith("apply:"):
                    os.kill(sync.pid, signal.SIGKILL)
                    break
        except BaseException:
            sync.kill()
            raise
        finally:
            sync.wait(timeout=600)  # reaped: its pid is gone from this host
            sync.stderr.close()
        assert sync.returncode == -signal.SIGKILL, f"the sync was not killed mid-apply ({sync.returncode}): {seen[-5:]}"
        return sync.pid

    def open(self) -> Store:
        return open_store(self.store_url)

    def pending_changes(self) -> list[str]:
        """What a full read of the directory would still change (a dry run)."""
        result = self.sync("--full", "--dry-run")
        assert result["status"] == "dry-run", result
        plan: list[str] = result["plan"]
        return plan


def _state_after_the_kill(ws: Workspace) -> tuple[list[tuple[str, str | None]], int, int]:
    """(the runs, events of the killed run, users in the store)."""
    store = ws.open()
    try:
        with store.session() as session:
            runs = list_runs(session, directory=DIRECTORY)
            events = session.scalar(select(func.count()).select_from(SyncEvent).where(SyncEvent.run_id == runs[0].id))
            users = session.scalar(select(func.count()).select_from(User))
        return [(r.status, r.error) for r in reversed(runs)], int(events or 0), int(users or 0)
    finally:
        store.dispose()


def _statuses(ws: Workspace) -> list[tuple[str, str | None]]:
    store = ws.open()
    try:
        with store.session() as session:
            return [(r.status, r.error) for r in reversed(list_runs(session, directory=DIRECTORY))]
    finally:
        store.dispose()


def _assert_killed_mid_apply(ws: Workspace, pid: int) -> None:
    runs, events, users = _state_after_the_kill(ws)
    assert runs == [("running", None)]
    assert events > 0 and users < USERS  # some chunks committed, not all
    store = ws.open()
    try:
        holder = current_holder(store, LEASE)
    finally:
        store.dispose()
    assert holder is not None and holder.pid == pid  # the dead process's lease is still there


def test_the_next_sync_after_a_sigkill_runs_at_once_on_the_same_host(tmp_path: Path, store_url: str) -> None:
    ws = Workspace(tmp_path, store_url, ttl=3600)  # an hour: only the dead-process check frees it now
    pid = ws.kill_sync_mid_apply()
    _assert_killed_mid_apply(ws, pid)

    result = ws.sync()

    assert (result["status"], result["error"]) == ("succeeded", None)
    assert _statuses(ws) == [("failed", INTERRUPTED), ("succeeded", None)]
    assert ws.pending_changes() == []


def test_a_sigkilled_holder_on_another_host_is_replaced_once_its_lease_expires(
    tmp_path: Path, store_url: str
) -> None:
    ws = Workspace(tmp_path, store_url, ttl=10)  # the shortest TTL allowed
    pid = ws.kill_sync_mid_apply()
    _assert_killed_mid_apply(ws, pid)
    store = ws.open()
    try:
        with store.begin_write() as conn:  # as if that process had run on another host
            elsewhere = f"elsewhere:{pid}:20261201T000000Z:1:ab"
            conn.execute(update(leases).where(leases.c.name == LEASE).values(holder=elsewhere))
        with store.session() as session:
            expires = session.scalars(select(Lease.expires_at).where(Lease.name == LEASE)).one()
    finally:
        store.dispose()

    early = ws.sync()
    assert early["status"] == "skipped" and "already running" in early["error"]
    wait = expires - clock.now() + timedelta(seconds=0.5)
    time.sleep(max(wait.total_seconds(), 0))  # the lease's TTL runs out, in real time
    late = ws.sync()

    assert (late["status"], late["error"]) == ("succeeded", None)
    assert [s for s, _ in _statuses(ws)] == ["failed", "skipped", "succeeded"]
    assert ws.pending_changes() == []
