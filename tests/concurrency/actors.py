"""What the concurrency tests run in child processes: the real `dirsync` command line, and
an observer that polls the store and checks every state it sees.

Children come from a forkserver that has this module (and so the whole CLI) imported once:
each `dirsync ...` starts in milliseconds instead of a second, which lets a round run many
writers at once on a two-core machine. Nothing here is shared with the parent but files.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Any

from tests.concurrency.invariants import Observation, read_snapshot
from cli.main import main

FORKSERVER = multiprocessing.get_context("forkserver")
FORKSERVER.set_forkserver_preload(["tests.concurrency.actors"])


def run_cli(args: list[str], delay: float, report: str) -> None:
    """After `delay` seconds, `dirsync ARGS` as a user would run it; its exit code and
    streams go to `report` (JSON)."""
    time.sleep(delay)
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    sys.argv = ["dirsync", *args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    Path(report).write_text(json.dumps({"args": args, "code": code if isinstance(code, int) else 1 if code else 0,
                                        "out": out.getvalue(), "err": err.getvalue()}))


def observe(url: str, stop: Any, report: str, seed: int) -> None:
    """Poll the store at `url` until `stop` is set, checking every state seen; write what
    was seen and any violation to `report` (JSON)."""
    from store import open_store

    store = open_store(url)
    watch = Observation()
    pause = random.Random(seed)
    try:
        while not stop.is_set():
            watch.see(read_snapshot(store))
            time.sleep(pause.uniform(0, 0.01))
        watch.see(read_snapshot(store))
    finally:
        store.dispose()
    Path(report).write_text(json.dumps(watch.report()))


def start(target: Any, *args: Any) -> Any:
    process = FORKSERVER.Process(target=target, args=args)
    process.start()
    return process


def run_cycle_with_hooks(args: list[str], url: str, chunk_size: int, hooks: dict[str, Any], report: str) -> None:
    """`dirsync ARGS` (a sync) whose applies commit `chunk_size` operations at a time; after
    each commit a second connection reads the admin group's active members (one line per
    commit appended to `hooks["commits"]`), then, if told:
    - `pause_after` N: after the N-th commit, create `hooks["paused"]` and wait for
      `hooks["go"]` to exist (the parent does something meanwhile);
    - `kill_after` N: SIGKILL this process right after the N-th commit.
    """
    import functools
    import os
    import signal

    import reconcile.cycle
    from reconcile.apply import apply
    from store import open_store

    watcher = open_store(url)
    commits = Path(hooks["commits"])
    done = 0

    def after_commit() -> None:
        nonlocal done
        done += 1
        admins = read_snapshot(watcher).admin_active
        with commits.open("a") as fh:
            fh.write(json.dumps({"commit": done, "admin_active": admins}) + "\n")
        if hooks.get("kill_after") == done:
            os.kill(os.getpid(), signal.SIGKILL)
        if hooks.get("pause_after") == done:
            Path(hooks["paused"]).touch()
            deadline = time.monotonic() + 120
            while not Path(hooks["go"]).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the parent never said go")
                time.sleep(0.01)

    def hooked_apply(*a: Any, progress: Any = None, **kw: Any) -> Any:
        def progress_then_hooks(n: int, total: int) -> None:
            if progress is not None:
                progress(n, total)
            after_commit()

        return apply(*a, progress=progress_then_hooks, chunk_size=chunk_size, **kw)

    # The cycle calls `apply` without a chunk size; CHUNK_SIZE is bound as its default
    # when the module loads, so the cycle's own reference is what must change.
    reconcile.cycle.apply = functools.update_wrapper(hooked_apply, apply)  # type: ignore[assignment]
    try:
        run_cli(args, 0.0, report)
    finally:
        watcher.dispose()


def wait_for(path: Path, process: Any, timeout: float = 120) -> bool:
    """True once `path` exists; False if `process` ended first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not process.is_alive() or time.monotonic() > deadline:
            return path.exists()
        time.sleep(0.01)
    return True
