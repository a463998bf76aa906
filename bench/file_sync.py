"""`dirsync sync` on a large file directory: wall time and peak memory, first and no-op cycle.

    python bench/file_sync.py [--users 100000] [--groups 2000] [--memberships 200000] [--store URL]
        [--beside USERS] [--json PATH]

    a small directory in a store another directory fills (what a full read loads):
        python bench/file_sync.py --users 500 --groups 5 --memberships 600 --beside 100000

Each cycle runs in a fresh process (`dirsync sync`), as an operator would, so wall time
includes start-up and peak RSS is the cycle's own. The floor is a process that reads and
parses the same export and does nothing else, measured in the same run. Prints one line per cycle; not part of
the test run. With `--beside N` the store first gets another directory of N users (2 % as
many groups, 2 memberships each), synced before anything is measured: the cycles measured
are those of a directory beside it.

With `--json PATH` it also writes each process's figures there (`phases`: key, wall and CPU
seconds, peak RSS in MiB from `VmHWM`, operations), after measuring one more process for
reference: `startup`, `dirsync --help` through the same wrapper (start-up alone: the
interpreter, the CLI and the store's models), for `bench/goals.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_directory(path: Path, users: int, groups: int, memberships: int, seed: int, prefix: str = "") -> None:
    rng = random.Random(seed)
    data = {
        "users": [
            {"id": f"{prefix}u{i}", "email": f"{prefix}user{i}@example.com", "given_name": f"Given{i}",
             "family_name": f"Family{i}", "display_name": f"Given{i} Family{i}", "active": True}
            for i in range(users)
        ],
        "groups": [],
    }
    per_group: list[set[str]] = [set() for _ in range(groups)]
    for _ in range(memberships):
        per_group[rng.randrange(groups)].add(f"{prefix}u{rng.randrange(users)}")
    data["groups"] = [{"id": f"{prefix}g{g}", "name": f"{prefix}Group {g}", "members": sorted(m)}
                      for g, m in enumerate(per_group)]
    path.write_text(json.dumps(data))


# Runs `dirsync` in a child that reports its own CPU seconds and peak RSS (KiB) as its
# last stderr line. The peak is the process's own high-water mark (VmHWM): `ru_maxrss`
# keeps the forking parent's, this script's, which holds the generated exports.
PEAK = (
    "def peak_kib():\n"
    "    with open('/proc/self/status') as status:\n"
    "        return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
)
CHILD = PEAK + (
    "import resource, runpy, sys\n"
    "sys.argv = ['dirsync'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('cli.main', run_name='__main__')\n"
    "finally:\n"
    "    usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print(usage.ru_utime + usage.ru_stime, peak_kib(), file=sys.stderr)\n"
)


# The floor: the same process reading and parsing the export, nothing else.
FLOOR = PEAK + (
    "import json, resource, sys\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    data = json.loads(f.read())\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print(usage.ru_utime + usage.ru_stime, peak_kib())\n"
)


# Each measured process, for --json.
MEASURED: list[dict[str, object]] = []


def run_floor(export: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", FLOOR, str(export)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    cpu, peak_kib = proc.stdout.split()
    print(f"{'floor (read + parse the file)':<30} wall {wall:6.2f} s   cpu {float(cpu):6.2f} s   "
          f"peak RSS {int(peak_kib) / 1024:7.1f} MiB")
    MEASURED.append({"key": "floor", "wall": wall, "cpu": float(cpu), "peak_rss_mib": int(peak_kib) / 1024})
    return wall


def run_startup(config: Path) -> None:
    """`dirsync --help` through the cycles' wrapper: the start-up every cycle's wall time includes."""
    env = {**os.environ, "DIRSYNC_CONFIG": str(config)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, "--help"], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - start
    *_, cpu, peak_kib = proc.stderr.split()
    MEASURED.append({"key": "startup", "wall": wall, "cpu": float(cpu), "peak_rss_mib": int(peak_kib) / 1024})


def run_cycle(config: Path, label: str, *args: str, key: str = "") -> float:
    env = {**os.environ, "DIRSYNC_CONFIG": str(config)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, "sync", "--json", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    *_, cpu, peak_kib = proc.stderr.split()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    [result] = json.loads(proc.stdout)
    changes = sum(v for k, v in result["counts"].items() if not k.startswith("outcome:") and k != "rejected")
    # CPU seconds (user + system) move far less than wall time when the machine is busy.
    print(f"{label:<30} wall {wall:6.2f} s   cpu {float(cpu):6.2f} s   peak RSS {int(peak_kib) / 1024:7.1f} MiB   "
          f"operations {changes:>6}   {result['status']} ({result['mode']})")
    MEASURED.append({"key": key or label, "wall": wall, "cpu": float(cpu), "peak_rss_mib": int(peak_kib) / 1024,
                     "operations": changes, "summary": f"{result['status']} ({result['mode']})"})
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--store", default=None, help="store URL (default: a new SQLite file)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--beside", type=int, default=0, metavar="USERS",
                        help="first fill the store with another directory of USERS users (not measured)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the processes as JSON")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = args.store or f"sqlite:///{folder / 'bench.db'}"
        make_directory(folder / "directory.json", args.users, args.groups, args.memberships, args.seed)
        config = folder / "dirsync.toml"
        config.write_text(f'[store]\nurl = "{store}"\n\n[directories.hr]\nkind = "file"\npath = "directory.json"\n'
                          '\n[directories.other]\nkind = "file"\npath = "other.json"\n')
        size = (folder / "directory.json").stat().st_size / 2**20
        print(f"file directory: {args.users} users, {args.groups} groups, {args.memberships} memberships"
              f" ({size:.1f} MiB JSON), store {store.split(':')[0]}")
        if not store.startswith("sqlite"):
            subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, check=True,
                           env={**os.environ, "DIRSYNC_CONFIG": str(config)}, capture_output=True)
        if args.beside:
            make_directory(folder / "other.json", args.beside, max(1, args.beside // 50), 2 * args.beside,
                           args.seed, prefix="other-")
            run_cycle(config, f"beside: other ({args.beside})", "other")
        floor = run_floor(folder / "directory.json")
        first = run_cycle(config, "first cycle", "hr", key="first")
        run_cycle(config, "no-op cycle (file unchanged)", "hr", key="noop")
        run_cycle(config, "no-op cycle, --full", "hr", "--full", key="noop_full")
        print(f"first cycle / floor = {first / floor:.1f}x (wall; process start-up included in both)")
        if args.json:
            run_startup(config)
            args.json.write_text(json.dumps({
                "bench": "file", "users": args.users, "groups": args.groups, "memberships": args.memberships,
                "store": "SQLite" if store.startswith("sqlite") else "PostgreSQL",
                "load": [load_before, os.getloadavg()], "phases": MEASURED}, indent=1))


if __name__ == "__main__":
    main()
