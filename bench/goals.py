"""Issue 14's performance goals in one run: one Markdown table, met or missed and by how much.

    python bench/goals.py [--users 100000 --groups 2000 --memberships 200000]
                          [--stores sqlite,postgresql] [--million [file,okta,entra]] [--many [--many-args ARGS]]
                          [--out PATH]

    a quick check of the script itself (the numbers mean nothing at this size):
        python bench/goals.py --users 3000 --groups 60 --memberships 6000

Runs the benches as child processes (this interpreter), each with `--json`, reads what they
wrote and prints one row per goal, case (Okta org scope, Okta app scope, Entra) and store
(SQLite, PostgreSQL): the measured value, the goal, and "met" or "missed by" how much (a
factor for ratios, the difference and the factor for seconds, MiB and requests). Then the
machine: nproc, load average before and after, date, git commit.

Per store, in this order, each a separate bench process with its own simulator, so every
floor is measured in the same run as the cycles it is compared with:

- `okta_bench.py --cycles --store URL` (Okta, org scope), `okta_bench.py --cycles --app
  --store URL` (app scope: half the users assigned directly, a fifth of the groups), and
  `graph_bench.py --engine --store URL` (Entra), at `--users/--groups/--memberships`;
- SQLite is a new file in a temporary folder (the bench's default); PostgreSQL is a fresh
  scratch database `bench_goals` on the server `--pg` names (created before each bench,
  dropped after it; no other database is touched), migrated by the bench.

How each number is measured (every phase is a fresh child process of the bench, with the
simulator in a process of its own; wall time is `time.perf_counter` around the phase's
work inside that process, after its imports: the benches' own reading, which leaves out
process start-up):

1. full first cycle / floor: wall time of `run_cycle` on the empty store, divided by the
   wall time of the floor of the same bench run (Okta: the same pages fetched and
   JSON-parsed with aiohttp, four in flight, each page's records counted and dropped
   (until run 11 the floor held them: see results/goals.md), after one warm-up floor;
   Entra: both delta chains with requests + json, the fastest of the bench's three floors,
   which alternate with full reads). Goal: at most 1.5x. The CPU ratio is in the detail: a cycle's CPU is
   its own (`time.process_time` around it, in both benches), a floor's the floor's.
2. peak RSS of that full cycle's process: `ru_maxrss` / 1024, MiB (the benches print it as
   MB or MiB; the goal's 300 MB is read as 300 MiB). Goal: under 300.
3. no-op cycle: the next `run_cycle`, nothing changed: its wall time (so above process
   start-up: interpreter, imports of the engine, the store and the SDK's request path are
   not in it) and the requests the simulator answered during the phase. Goals: at most
   0.5 s and at most 4 requests.
4. 1 % change cycle: the benches' 1 % change (okta_bench: 1 % of the users renamed,
   deactivated or moved between groups; graph_bench: 1 % of the users and of the
   memberships, hires 20 minutes later by Graph's clock), then `run_cycle`: its wall time
   as a share of the full cycle's (goal: at most 5 %), and its requests as a share of the
   full cycle's (read here as "in proportion to what changed": at most 5 % too; the counts
   and the change are in the detail).
5. with `--million`: ten times `--users/--groups/--memberships` (1,000,000 / 20,000 /
   2,000,000 at the defaults), per store. `file`: `file_sync.py --json`, whole `dirsync sync`
   processes (start-up included in the cycle and in the floor, a process that reads and
   parses the export; file_sync's own reading): first cycle / floor at most 2x, peak RSS
   (`VmHWM`) under 1,024 MiB, and the no-op cycle (file unchanged) less the wall time of a
   `dirsync --help` process through the same wrapper in the same run (above start-up)
   under 1 s; and the peak RSS of the `--full` no-op cycle after them (a full cycle over a
   store that already holds the directory, as a daemon's periodic full read), under
   1,024 MiB too. `okta`: `okta_bench.py --cycles` (org scope) and `entra`: `graph_bench.py
   --engine`, as in 1-3, with those goals.
6. with `--many`: `many_directories.py --json` with its own defaults (200 file directories x
   500 users, 1 then 3 Celery workers, PostgreSQL; `--many-args` passes others): a round's
   speed-up over 1 worker at least W / 1.2 (time x W within 20 % of the 1-worker time), for
   the first round (creates) and the changed round; the longest steady wait from due to
   start at most one interval.

Without `--million` / `--many` those rows say "not run". Every bench's own output goes to
stderr, the table to stdout (and to `--out`). A bench that fails gives its rows as failed.

After the table, "Why the missed goals are missed" says, for each missed goal, what this
same run measured that explains it:
- goal 1: per store, `write_floor.py --json` at `--users/--groups/--memberships` (a file
  directory's first cycle, then its rows and one event per operation inserted again into an
  empty store with nothing else to do), compared with each case's floor: the least any
  design that writes those rows and events pays, even if it overlaps the read completely;
- goal 4's requests: the endpoint that answered most of the change cycle's requests;
- goal 5's time: ten times the same store's write floor (measured at the base size, a
  tenth of goal 5's) against the case's floor: about what writing the million-user cycle's
  rows and events costs alone, at the base size's rate per row;
- goal 5's memory: the peak RSS of the floor alone (file: the process that parses the
  export; Okta and Entra: the connector's read without the engine, okta_bench's `full_read`
  and graph_bench's `full` phase);
- goal 5's file no-op: how much of a core its process used above start-up (the rest it
  waited);
- goal 6: the machine's cores against the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from goal_rows import Row, cycle_rows, file_rows, many_rows, table, why

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATABASE = "bench_goals"
PG_ADMIN = os.environ.get("DIRSYNC_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
STORES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# Goal 5's IdP cases: the bench, its engine flag, and its full and no-op cycles' phase keys.
MILLION_CYCLES = [("Okta", "okta_bench.py", "--cycles", "full_cycle", "noop_cycle"),
                  ("Entra", "graph_bench.py", "--engine", "engine-full", "engine-noop")]
MILLION = {"file", *(name.lower() for name, *_ in MILLION_CYCLES)}


NOTE = ("Times are wall seconds of each phase's own work in a fresh process, after its imports (so above"
        " process start-up), except goal 5's file rows: whole `dirsync sync` processes, the no-op less a `dirsync"
        " --help` process. Each ratio's two sides come from the same bench run. How each number is measured:"
        " `bench/goals.py`'s docstring.")


# --- running the benches ----------------------------------------------------------------------


@contextmanager
def scratch_store(kind: str, admin: str) -> Iterator[str | None]:
    """None for SQLite (the bench makes its own file), else the URL of a fresh `bench_goals`
    database, dropped when the block ends."""
    if kind == "sqlite":
        yield None
        return
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        info = conn.info
        url = f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{DATABASE}"
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def run_bench(script: str, *args: str, store: str | None = None) -> dict[str, Any] | str:
    """Run `bench/<script>` with `--json`, its output on stderr; its JSON, or why there is none."""
    with tempfile.TemporaryDirectory(prefix="bench-goals-") as tmp:
        out = Path(tmp) / "out.json"
        argv = [sys.executable, str(BENCH / script), *args, *(["--store", store] if store else []), "--json", str(out)]
        print(f"\n$ {shlex.join(argv[1:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, stdout=sys.stderr, check=False)
        print(f"({script}: exit {proc.returncode}, {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        if proc.returncode != 0 or not out.exists():
            return f"{script} failed: exit {proc.returncode}"
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def bench_on(kind: str, admin: str, script: str, *args: str) -> dict[str, Any] | str:
    """`run_bench` on a scratch store of `kind`; a database that cannot be made is a failed bench."""
    try:
        with scratch_store(kind, admin) as url:
            return run_bench(script, *args, store=url)
    except psycopg.Error as exc:
        return f"scratch database: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"


def commit() -> str:
    """The commit measured (read when the run starts), and whether the tree differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{git('rev-parse', '--short', 'HEAD')}{dirty}"


def machine(started: tuple[str, tuple[float, ...], str]) -> str:
    when, before, measured = started
    return (
        f"Machine: nproc {os.cpu_count()}, load average {' / '.join(f'{x:.2f}' for x in before)} before, "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} after; "
        f"{when} → {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"git {measured}; "
        f"Python {platform.python_version()}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="See the module docstring for how each number is measured.")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--million", nargs="?", const="file", default="", metavar="file,okta,entra",
                        help="goal 5 at ten times the size: the file directory (the default), Okta (org scope),"
                             " Entra, or several (slow)")
    parser.add_argument("--many", action="store_true", help="goal 6: bench/many_directories.py (several minutes)")
    parser.add_argument("--many-args", default="", help="options for many_directories.py (default: its own)")
    parser.add_argument("--pg", default=PG_ADMIN, help="libpq conninfo of a database to create bench_goals from")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    million = {m.strip() for m in args.million.split(",") if m.strip()}
    if unknown := set(stores) - set(STORES) or million - MILLION:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    started = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg(), commit())
    size = ["--users", str(args.users), "--groups", str(args.groups), "--memberships", str(args.memberships)]
    big = [str(10 * int(v)) if i % 2 else v for i, v in enumerate(size)]

    rows: list[Row] = []
    benches: dict[tuple[str, str], dict[str, Any] | str] = {}
    floors: dict[str, dict[str, Any] | str] = {}
    for kind in stores:
        store = STORES[kind]
        okta = benches["Okta, org scope", store] = bench_on(kind, args.pg, "okta_bench.py", *size, "--cycles")
        rows += cycle_rows("Okta, org scope", store, okta, "full_cycle", "noop_cycle", "change_cycle")
        app = benches["Okta, app scope", store] = bench_on(kind, args.pg, "okta_bench.py", *size, "--cycles", "--app")
        rows += cycle_rows("Okta, app scope", store, app, "full_cycle", "noop_cycle", "change_cycle")
        entra = benches["Entra", store] = bench_on(kind, args.pg, "graph_bench.py", *size, "--engine")
        rows += cycle_rows("Entra", store, entra, "engine-full", "engine-noop", "engine-1%")
        floors[store] = bench_on(kind, args.pg, "write_floor.py", *size)

    million_case = f"{int(big[1]):,} users, {int(big[3]):,} groups, {int(big[5]):,} memberships"
    for kind in stores:
        store = STORES[kind]
        if "file" in million:
            result = benches[f"file, {million_case}", store] = bench_on(kind, args.pg, "file_sync.py", *big)
            rows += file_rows(store, result, f"file, {million_case}")
        else:
            rows.append(Row("5. one million users (file directory)", "file", store, "–", "–",
                            "not run (pass --million)"))
        for name, script, flag, full_key, noop_key in MILLION_CYCLES:
            if name.lower() not in million:
                rows.append(Row(f"5. one million users ({name})", name, store, "–", "–",
                                f"not run (pass --million {name.lower()})"))
                continue
            result = benches[f"{name}, {million_case}", store] = bench_on(kind, args.pg, script, *big, flag)
            rows += cycle_rows(f"{name}, {million_case}", store, result, full_key, noop_key, None,
                               ratio_goal=2, rss_goal=1024, noop_goal=1, goals=("5", "5", "5"))
    many: dict[str, Any] | str | None = None
    if args.many:
        many = run_bench("many_directories.py", *shlex.split(args.many_args))
        rows += many_rows(many)
    else:
        rows.append(Row("6. many directories over Celery workers", "200 x 500 users", "PostgreSQL", "–", "–",
                        "not run (pass --many)"))

    title = (f"Issue 14's goals: {args.users:,} users, {args.groups:,} groups, {args.memberships:,} memberships "
             f"(`python bench/goals.py {shlex.join(sys.argv[1:])}`).")
    lines = [title, "", *table(rows), "", NOTE, "", *why(rows, benches, floors, many), "", machine(started)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
