"""What one worker count of `bench/many_directories.py` measured (`Outcome`), beat's schedule
read from its cycles (waits from due to start, gaps between starts) and the Markdown tables
the script prints from the outcomes of every worker count."""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    workers: int
    first_round: float
    changed_round: float
    phases: dict[str, dict[str, Any]]
    waits: dict[str, list[float]]  # steady / backlog: due -> start, seconds
    sent_waits: list[float]  # steady: message sent -> start
    gaps: list[float]  # steady: between two starts of one directory
    counts: dict[str, int]
    cycle_seconds: list[float]
    beat_cpu: float  # beat's whole life: the first round and the steady phase
    load_seconds: tuple[float, float]  # one directory's full-read scope / the whole store, alone


def schedule_waits(
    runs: list[Any], sent_at: dict[str, float], run_of: dict[str, int], interval: float,
    first_end: float, beat_stopped: float,
) -> tuple[dict[str, list[float]], list[float], list[float]]:
    """Due -> start for every beat cycle after each directory's first (steady: due after the
    first round ended; backlog: before), sent -> start for the steady ones, and the gaps
    between a directory's starts. A directory due before beat stopped whose cycle never
    came counts as waiting until beat stopped."""
    sent_for_run = {run_id: sent_at[i] for i, run_id in run_of.items() if i in sent_at}
    waits: dict[str, list[float]] = {"steady": [], "backlog": []}
    sent_waits: list[float] = []
    gaps: list[float] = []
    by_directory: dict[str, list[Any]] = {}
    for run in runs:
        if run.trigger == "beat" and run.status != "skipped":
            by_directory.setdefault(run.directory, []).append(run)
    for cycles in by_directory.values():
        cycles.sort(key=lambda r: r.started_at)
        starts = [r.started_at.timestamp() for r in cycles]
        for k in range(1, len(cycles)):
            due = starts[k - 1] + interval
            waits["steady" if due >= first_end else "backlog"].append(starts[k] - due)
            if due >= first_end:
                gaps.append(starts[k] - starts[k - 1])
                if cycles[k].id in sent_for_run:
                    sent_waits.append(starts[k] - sent_for_run[cycles[k].id])
        due = starts[-1] + interval
        if due < beat_stopped - interval / 4:  # due a tick before beat stopped, never started
            waits["steady" if due >= first_end else "backlog"].append(beat_stopped - due)
            gaps.append(beat_stopped - starts[-1])
    return waits, sent_waits, gaps


# --- the report -----------------------------------------------------------------------------


def _max(values: list[float]) -> str:
    return f"{max(values):.1f} s" if values else "–"


def _p50(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s" if values else "–"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    base = next((o for o in outcomes if o.workers == 1), None)
    okta = args.kind == "okta"
    what = (f"{args.directories} Okta directories in app scope (apps of one simulated org, {args.latency_ms:g} ms"
            f" added to every request, rate limits lifted; the simulator in its own process)"
            if okta else f"{args.directories} file directories")
    changing = ", apps changing every interval" if okta else ", files changing every interval"
    lines = [
        f"{what} x {args.users} users, {args.groups} groups; interval"
        f" {args.interval} s (beat's tick {args.interval / 4:g} s){changing if args.steady_changes else ''};"
        f" store PostgreSQL, broker Redis;"
        f" prefork, concurrency 1 per worker; nproc {os.cpu_count()}.",
        "",
        "| workers | first round (creates) | speed-up | changed round | speed-up | ideal | within 20 %? "
        "| max wait due→start (steady) | max gap / interval | CPU s workers | CPU s PostgreSQL (bench backends / server) "
        "| load average |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        up1 = base.first_round / o.first_round if base else float("nan")
        up2 = base.changed_round / o.changed_round if base else float("nan")
        within = "yes" if base and o.changed_round * o.workers <= 1.2 * base.changed_round else "no"
        within1 = "yes" if base and o.first_round * o.workers <= 1.2 * base.first_round else "no"
        verdict = "–" if o.workers == 1 else f"first {within1}, changed {within}"
        cpu_w = sum(p["workers"] for p in o.phases.values())
        cpu_b = sum(p["backends"] for p in o.phases.values())
        cpu_s = sum(p["postgres"] for p in o.phases.values())
        loads = [p["load"] for p in o.phases.values()]
        load = f"{min(x[0][0] for x in loads):.1f}–{max(x[1][0] for x in loads):.1f}"
        gap = f"{max(o.gaps):.1f} s / {args.interval} s" if o.gaps else "–"
        lines.append(
            f"| {o.workers} | {o.first_round:.1f} s | {up1:.2f}x | {o.changed_round:.1f} s | {up2:.2f}x | "
            f"{o.workers}x | {verdict} | {_max(o.waits['steady'])} | {gap} | "
            f"{cpu_w:.1f} | {cpu_b:.1f} / {cpu_s:.1f} | {load} |")
    lines += ["", "Where the time went, per phase (CPU seconds; available = wall x nproc):", "",
              "| workers | phase | wall | workers CPU | workers waiting for a core | PostgreSQL: bench backends / "
              "server | redis | this script | " + ("simulator | Okta requests | " if okta else "")
              + "bench backends sampled (0.25 s) |",
              "|---:|---|---:|---:|---:|---:|---:|---:|" + ("---:|---|" if okta else "") + "---|"]
    for o in outcomes:
        for phase, p in o.phases.items():
            samples = ", ".join(f"{k} {v}" for k, v in sorted(p["samples"].items(), key=lambda kv: -kv[1])) or "–"
            if p["lock_waits"]:
                samples += " (waiting: " + ", ".join(f"{k} {v}" for k, v in p["lock_waits"].items()) + ")"
            lines.append(
                f"| {o.workers} | {phase} | {p['wall']:.1f} s | {p['workers']:.1f} | {p['run_delay']:.1f} | "
                f"{p['backends']:.1f} / {p['postgres']:.1f} | {p['redis']:.1f} | {p['bench']:.1f} | "
                + (f"{p['simulator']:.1f} | {sum(p['requests'].values())} ("
                   + ", ".join(f"{k} {v}" for k, v in p["requests"].items()) + ") | " if okta else "")
                + f"{samples} |")
    lines += ["", "Beat's schedule (steady: cycles due after the first round ended; backlog: due during it):", "",
              "| workers | waits due→start steady: p50 / max | backlog: p50 / max | sent→start steady: p50 / max "
              "| gaps: p50 / max | changed round, one cycle: p50 / max | a full read's load: its scope / "
              "the whole store, alone | beat CPU s | "
              + " | ".join(outcomes[0].counts) + " |",
              "|---:|---|---|---|---|---|---:|---:|" + "---:|" * len(outcomes[0].counts)]
    for o in outcomes:
        lines.append(
            f"| {o.workers} | {_p50(o.waits['steady'])} / {_max(o.waits['steady'])} | "
            f"{_p50(o.waits['backlog'])} / {_max(o.waits['backlog'])} | {_p50(o.sent_waits)} / {_max(o.sent_waits)} | "
            f"{_p50(o.gaps)} / {_max(o.gaps)} | {_p50(o.cycle_seconds)} / {_max(o.cycle_seconds)} | "
            f"{o.load_seconds[0]:.2f} s / {o.load_seconds[1]:.2f} s | {o.beat_cpu:.1f} | "
            + " | ".join(str(v) for v in o.counts.values()) + " |")
    return "\n".join(lines)
