"""What a first cycle's writes cost on their own: the rows and events of a real first cycle,
inserted again into an empty store with nothing else to do.

    python bench/write_floor.py [--users 100000] [--groups 2000] [--memberships 200000]
        [--store postgresql+psycopg://postgres@127.0.0.1:5432/bench_floor] [--costs] [--json PATH]

One run, each step a fresh process (SQLite unless `--store` names a scratch PostgreSQL
database, which is dropped and created again):

1. the floor of reading: a process that reads and parses the export (as `file_sync.py`);
2. a real first cycle, `dirsync sync` on a file directory (as `file_sync.py`): its wall
   time, CPU seconds and the rows it leaves (users, groups, memberships, events);
3. the write floor: a process that first loads those very rows into memory as tuples (not
   timed), then inserts them into a store with the same schema (migrated, not timed) as
   fast as the driver takes them: one `executemany` (PostgreSQL: one `COPY`) per table
   and chunk, values already in the form the driver stores (JSON serialised, datetimes as
   stored), committing once per 2,000 operations as the apply does
   (`reconcile.apply.CHUNK_SIZE`). No planning, no checks, no lookups: what any design
   that writes these rows and events row by row from Python pays at least. Printed per table and in all, and once more in one transaction.

With `--costs` it then measures the write floor (chunks) again once per part of the
schema taken away before the inserts (each index of `sync_events` and of `memberships`,
every index of `sync_events` at once, and the foreign keys: on PostgreSQL those of each
table, on SQLite the connection's checks), and prints what each part saves; the whole
schema is measured before and after them, so their difference shows the drift.

`--json PATH` also writes the figures there (`phases`: key, wall and CPU seconds; keys
`floor`, `first_cycle`, `write_floor` (chunks, with `spent` per table and `rows`) and
`write_floor_one`, and with `--costs` one phase per measurement, keyed by its printed label),
for `bench/goals.py`.

The point is the issue's 1.5x goal: if the write floor alone is a large part of what the
cycle may take (1.5x the read floor), no planner and no apply can meet the goal while
writing these rows and events; only work that overlaps the read (or does not happen) can.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from file_sync import MEASURED, ROOT, make_directory, run_cycle, run_floor  # noqa: E402

# The child: load the rows (untimed), migrate a fresh store (untimed), insert (timed).
WRITER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from sqlalchemy import create_engine
from store import open_store
from store.models import Base
from reconcile.apply import CHUNK_SIZE

source_url, target_url, mode = sys.argv[2], sys.argv[3], sys.argv[4]
# What to take away from the target's schema before the timed part (`--costs`): SQL run on
# the migrated store, and whether SQLite's connection checks foreign keys.
without = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {"statements": [], "foreign_keys": True}
tables = ("users", "groups", "memberships", "sync_events")
source = create_engine(source_url)
rows, setup = {}, {}
with source.connect() as conn:
    def read(name, wrap=lambda value: json.dumps(value)):
        # PostgreSQL hands JSON columns back as dicts: the driver takes them as text again.
        table = Base.metadata.tables[name]
        columns = [c.name for c in table.columns]
        order = ", ".join(c.name for c in table.primary_key.columns)
        return columns, [tuple(wrap(v) if isinstance(v, (dict, list)) else v for v in r) for r in conn.exec_driver_sql(
            f"SELECT {', '.join(columns)} FROM {name} ORDER BY {order}")]
    from psycopg.types.json import Json
    for name in ("directories", "sync_runs"):  # what the events and rows refer to: not timed
        setup[name] = read(name, Json if "postgresql" in source_url else json.dumps)
    for name in tables:
        rows[name] = read(name)
source.dispose()
store = open_store(target_url, check_schema=False)
store.upgrade()
with store.engine.begin() as conn:
    for name, (columns, values) in setup.items():
        conn.exec_driver_sql(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join(['?' if store.is_sqlite else '%s'] * len(columns))})", values)
    for statement in without["statements"]:
        conn.exec_driver_sql(statement)
# The apply's order: user creates, group creates, then memberships, an event for each.
ops = [(name, row) for name in ("users", "groups", "memberships") for row in rows[name][1]]
events = rows["sync_events"][1]
chunk_size = CHUNK_SIZE if mode == "chunks" else len(ops)
spent = {}
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu_start, wall_start = usage.ru_utime + usage.ru_stime, time.perf_counter()
raw = store.engine.raw_connection()
driver = raw.driver_connection
if store.is_sqlite:
    driver.execute("PRAGMA cache_size = -16384")  # as a large apply's transactions
    if not without["foreign_keys"]:
        driver.execute("PRAGMA foreign_keys = OFF")
cursor = driver.cursor()
placeholder = "?" if store.is_sqlite else "%s"


def insert(name, part):
    columns = rows[name][0]
    started = time.perf_counter()
    if store.is_sqlite:
        sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"
        cursor.executemany(sql, part)
    else:
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in part:
                copy.write_row(row)
    spent[name] = spent.get(name, 0.0) + time.perf_counter() - started


chunks = 0
for start in range(0, len(ops), chunk_size):
    chunk = ops[start:start + chunk_size]
    if store.is_sqlite:
        cursor.execute("BEGIN IMMEDIATE")  # the store's connections leave transactions to their caller
    for name in ("users", "groups", "memberships"):
        part = [row for table, row in chunk if table == name]
        if part:
            insert(name, part)
    # A cycle with rejections has more events than operations: the last chunk takes the rest.
    last = start + chunk_size >= len(ops)
    part = events[start:] if last else events[start:start + chunk_size]
    if part:
        insert("sync_events", part)
    started = time.perf_counter()
    driver.commit()
    spent["commit"] = spent.get("commit", 0.0) + time.perf_counter() - started
    chunks += 1
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": time.perf_counter() - wall_start, "cpu": usage.ru_utime + usage.ru_stime - cpu_start,
                  "chunks": chunks, "rows": {n: len(v) for n, (_, v) in rows.items()}, "spent": spent}))
"""


def scratch_postgresql(url: str, *, create: bool = True) -> None:
    """Drop the database `url` names (on its own server), and create it afresh."""
    base, _, name = url.rpartition("/")
    from sqlalchemy import create_engine

    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()


@contextmanager
def scratch_databases(url: str | None) -> Iterator[None]:
    """PostgreSQL: drop the scratch database `url` and its target when the bench ends, even
    when a step fails."""
    try:
        yield
    finally:
        if url:
            for name in (url, url + "_target"):
                scratch_postgresql(name, create=False)


def write_floor(source: str, target: str, mode: str, without: dict[str, object] | None = None) -> dict[str, object]:
    extra = [json.dumps(without)] if without is not None else []
    proc = subprocess.run([sys.executable, "-c", WRITER, str(ROOT), source, target, mode, *extra], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"write floor ({mode}): {proc.stderr.strip()[-800:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def schema_parts(postgresql: bool) -> list[tuple[str, dict[str, object]]]:
    """What `--costs` takes away, one at a time: each index of the event log and of
    memberships, all of the event log's indexes at once, and the foreign keys (PostgreSQL:
    those of memberships, then the event log's; SQLite: its connection's checks of all)."""
    sys.path.insert(0, str(ROOT))
    from store.models import Base

    def without(*statements: str, foreign_keys: bool = True) -> dict[str, object]:
        return {"statements": list(statements), "foreign_keys": foreign_keys}

    events, members = Base.metadata.tables["sync_events"], Base.metadata.tables["memberships"]
    parts = [(f"without index {index.name}", without(f"DROP INDEX {index.name}"))
             for table in (events, members) for index in sorted(table.indexes, key=lambda i: str(i.name))]
    parts.append(("without every index of sync_events", without(*(f"DROP INDEX {i.name}" for i in events.indexes))))
    if postgresql:
        parts += [(f"without the foreign keys of {table.name}",
                   without(*(f"ALTER TABLE {table.name} DROP CONSTRAINT {fk.name}"
                             for fk in table.foreign_key_constraints)))
                  for table in (members, events)]
    else:
        parts.append(("without foreign key checks (every table)", without(foreign_keys=False)))
    return parts


def costs(cycle_store: str, new_target: Callable[[], str], postgresql: bool) -> list[dict[str, object]]:
    """The write floor (chunks) again with each part of `schema_parts` taken away: what that
    part costs the writes. The whole schema is measured before and after them, so that the
    difference of the two says how far the machine drifted meanwhile."""
    found: list[dict[str, object]] = []
    parts = [("the whole schema (before)", None), *schema_parts(postgresql), ("the whole schema (after)", None)]
    for label, without in parts:
        result = write_floor(cycle_store, new_target(), "chunks", without)
        found.append({"key": label, **result})
    base = min(float(f["wall"]) for f in (found[0], found[-1]))  # type: ignore[arg-type]
    for f in found:
        wall = float(f["wall"])  # type: ignore[arg-type]
        print(f"{str(f['key']):<55} wall {wall:6.2f} s   cpu {float(f['cpu']):6.2f} s"  # type: ignore[arg-type]
              f"   saves {base - wall:6.2f} s")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--store", default=None, help="a scratch PostgreSQL database URL (dropped and created)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--costs", action="store_true",
                        help="then the write floor without each index and foreign key of sync_events and "
                             "memberships, one at a time")
    args = parser.parse_args()
    phases: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, scratch_databases(args.store):
        folder = Path(tmp)
        cycle_store = args.store or f"sqlite:///{folder / 'cycle.db'}"
        make_directory(folder / "directory.json", args.users, args.groups, args.memberships, args.seed)
        config = folder / "dirsync.toml"
        config.write_text(f'[store]\nurl = "{cycle_store}"\n\n[directories.hr]\nkind = "file"\n'
                          'path = "directory.json"\n')
        print(f"file directory: {args.users} users, {args.groups} groups, {args.memberships} memberships; "
              f"store {cycle_store.split(':')[0]}; load average {os.getloadavg()[0]:.2f}")
        if args.store:
            scratch_postgresql(args.store)
            subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, check=True,
                           env={**os.environ, "DIRSYNC_CONFIG": str(config)}, capture_output=True)
        read_floor = run_floor(folder / "directory.json")
        cycle = run_cycle(config, "first cycle", "hr", key="first_cycle")
        phases += MEASURED  # the floor's and the first cycle's processes

        def new_target() -> str:
            """A new, empty target store for one write floor."""
            if args.store:
                target = str(args.store) + "_target"
                scratch_postgresql(target)
                return target
            path = folder / "target.db"
            for leftover in (path, path.with_name("target.db-wal"), path.with_name("target.db-shm")):
                leftover.unlink(missing_ok=True)
            return f"sqlite:///{path}"

        for mode in ("chunks", "one transaction"):
            result = write_floor(cycle_store, new_target(), mode.split()[0] if mode == "chunks" else "one")
            spent = result["spent"]
            assert isinstance(spent, dict)
            parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in spent.items())
            print(f"{'write floor, ' + mode:<30} wall {result['wall']:6.2f} s   cpu {result['cpu']:6.2f} s   "
                  f"{result['chunks']} transaction(s); {parts}; rows {result['rows']}")
            if mode == "chunks":
                chunked = float(result["wall"])  # type: ignore[arg-type]
            phases.append({"key": "write_floor" if mode == "chunks" else "write_floor_one", **result})
        print(f"first cycle / read floor = {cycle / read_floor:.1f}x; write floor (chunks) / read floor = "
              f"{chunked / read_floor:.1f}x; write floor / first cycle = {chunked / cycle:.0%} (wall)")
        if args.costs:
            phases += costs(cycle_store, new_target, bool(args.store))
    if args.json:
        args.json.write_text(json.dumps({"phases": phases, "users": args.users, "groups": args.groups,
                                         "memberships": args.memberships,
                                         "store": "postgresql" if args.store else "sqlite"}))


if __name__ == "__main__":
    main()
