"""Where a whole-process benchmark's time goes, from /proc and pg_stat_activity.

`Probe(roots, conninfo)` meters groups of processes over a phase (`start()` ... `stop()`):
CPU seconds (user + system) of each group and of its descendants, the run-queue wait of
the group named "workers" (time runnable without a core, from schedstat), the CPU of
the database's live backends, of the whole PostgreSQL server (including its processes
that ended during the phase, from the postmaster's reaped time) and of redis-server, and
samples of what the database's backends were doing every 0.25 s. Linux only.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU of `pid`; with `reaped`, plus that of its children that exited
    (a postmaster's: backends and parallel workers that ended during the phase)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    return sum(int(f) for f in fields[11:15 if reaped else 13]) / TICKS


def run_delay_seconds(pid: int) -> float:
    """Time the process's threads were runnable but waited for a core (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command name)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1: raw.rindex(")")]
            out[int(entry.name)] = (int(raw[raw.rindex(")") + 2:].split()[1]), name)
    return out


def descendants(roots: list[int], table: dict[int, tuple[int, str]]) -> list[int]:
    found, frontier = list(roots), list(roots)
    while frontier:
        frontier = [pid for pid, (ppid, _) in table.items() if ppid in frontier]
        found += frontier
    return found


@dataclass
class Meter:
    """CPU of process groups over a phase (group -> pid -> seconds at the start)."""

    groups: dict[str, dict[int, float]] = field(default_factory=dict)
    delays: dict[int, float] = field(default_factory=dict)
    started: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    own: float = 0.0


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Probe:
    """What runs, and where the time goes: CPU per process group, the workers' run-queue
    wait, and samples of the bench's PostgreSQL backends (every 0.25 s, in a thread)."""

    def __init__(self, roots: Callable[[], dict[str, list[int]]], conninfo: str) -> None:
        self.roots = roots  # process groups to meter, by their root processes
        self.conninfo = conninfo
        self.samples: Counter[str] = Counter()
        self.lock_waits: Counter[str] = Counter()  # what the waiting statements were
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def pids(self) -> dict[str, list[int]]:
        table = processes()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            backends = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        return {
            **{group: descendants(pids, table) for group, pids in self.roots().items()},
            "backends": backends,
            "postgres": [pid for pid, (_, name) in table.items() if name.startswith("postgres")],
            "postmaster": [pid for pid, (ppid, name) in table.items()
                           if name.startswith("postgres") and not table.get(ppid, (0, ""))[1].startswith("postgres")],
            "redis": [pid for pid, (_, name) in table.items() if name == "redis-server"],
        }

    def start(self) -> Meter:
        pids = self.pids()
        self.samples.clear()
        self.lock_waits.clear()
        return Meter({g: {p: cpu_seconds(p, g == "postmaster") for p in ps} for g, ps in pids.items()},
                     {p: run_delay_seconds(p) for p in pids["workers"]}, time.monotonic(), os.getloadavg(), _own_cpu())

    def stop(self, meter: Meter) -> dict[str, Any]:
        """CPU seconds per group since `start` (processes that began since count from 0),
        the workers' run-queue wait, wall seconds, the samples, the load at both ends."""
        pids = self.pids()
        out: dict[str, Any] = {g: sum(cpu_seconds(p, g == "postmaster") - meter.groups.get(g, {}).get(p, 0.0)
                                      for p in ps) for g, ps in pids.items()}
        # The server: its live processes, plus what the postmaster reaped from those that
        # ended (their whole life, so less what they had used before the phase began).
        postmasters, before = set(pids["postmaster"]), meter.groups["postgres"]
        ended = sum(cpu for p, cpu in before.items() if p not in pids["postgres"])
        out["postgres"] = sum(cpu_seconds(p) - before.get(p, 0.0)
                              for p in pids["postgres"] if p not in postmasters) + out["postmaster"] - ended
        out["bench"] = _own_cpu() - meter.own
        out["run_delay"] = sum(run_delay_seconds(p) - meter.delays.get(p, 0.0) for p in pids["workers"])
        out["wall"] = time.monotonic() - meter.started
        out["samples"] = dict(self.samples)
        out["lock_waits"] = dict(self.lock_waits)
        out["load"] = (meter.load, os.getloadavg())
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        query = ("SELECT state, wait_event_type, query FROM pg_stat_activity"
                 " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.Error:
            return
        with conn:
            while not self._stop.wait(0.25):
                for state, wait, text in conn.execute(query):
                    if state == "active" and wait == "Lock":
                        self.samples["waiting on a lock"] += 1
                        self.lock_waits[_statement(text)] += 1
                    elif state == "active":
                        self.samples["running" if wait is None else f"waiting ({wait})"] += 1
                    elif state and state.startswith("idle in transaction"):
                        self.samples["idle in transaction"] += 1


def _statement(text: str | None) -> str:
    """A waiting statement, short: its verb and first table (`SELECT groups FOR UPDATE`)."""
    words = (text or "").replace("\n", " ").split()
    verb = words[0].upper() if words else "?"
    table = next((w for i, w in enumerate(words[1:], 1) if words[i - 1].upper() in ("FROM", "INTO", "UPDATE")), "?")
    joined = " ".join(words).upper()
    reserved = " (the reserved group's row)" if "RESERVED" in joined and table == "groups" else ""
    return f"{verb} {table}{' FOR UPDATE' if 'FOR UPDATE' in joined else ''}{reserved}"
