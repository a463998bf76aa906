"""Benchmark: many small directories spread over Celery workers on Redis, store on PostgreSQL.

    python bench/many_directories.py [--kind file|okta] [--latency-ms 100]
        [--directories 200] [--users 500] [--groups 5]
        [--workers 1,3] [--interval 30] [--steady-rounds 2] [--steady-changes]
        [--pg CONNINFO] [--redis-db 6] [--json PATH]

    quick check (about a minute):
        python bench/many_directories.py --directories 20 --users 100 --workers 1,2 --interval 10

The default run (200 x 500 users, 1 then 3 workers) takes about 4 minutes on the 2-core
machine (bench/results/many-directories.md, run 3; 30 minutes in run 1, when every
full-read cycle still loaded the whole store).
`--directories 100 --workers 1,2,3` took 14 minutes in run 2, and `--kind okta --latency-ms 100`
at the default size 13.5 minutes (run 4).

`--kind okta` makes every directory an Okta directory in app scope (`app_id`) of ONE
simulated Okta org instead of a file: the org holds an app per directory, with its
`--users` users assigned directly and its `--groups` groups assigned (memberships as the
files have them: every user in one group, every third in the next too), so each directory
reads only its own app and no user or group is in two apps. All directories share the
`org_url`, token (`token_env`, which the workers inherit) and `ca_bundle`. The simulator
runs in its own process (it does not share the workers' GIL, but it does share the
machine's cores), with rate limits lifted and `--latency-ms` added to every request (outside
its lock), standing for Okta's HTTPS round trip; each worker count gets a fresh org, built
the same. The changed round changes every app through the org's admin actions, so the
System Log records it as Okta would (5 users renamed, one deactivated, the one deactivated
by the change before reactivated, one moved to another group), and the cycles read it
incrementally, as in production: each one polls the org's whole log and user filter and
checks the users they name against its app (docs/okta.md). The per-phase table adds the
simulator's CPU and the requests it answered, per endpoint.

For each worker count (in one run, on the same data):

1. A fresh scratch database `bench_many` (created on the server `--pg` names, dropped at the
   end; no other database is touched) and Redis database `--redis-db` (flushed before and
   after: the bench's own). `--directories` file directories of `--users` users each, in
   `--groups` groups (every user in one group, every third in a second one), migrated store.
2. W worker processes and one beat, started as the load test starts them
   (`tests.load.cluster`, app `tests.load.celery_app`): prefork with concurrency 1, so each
   worker runs one cycle at a time and W is the number of cycles that can run at once.
   Every directory's interval is `--interval` seconds (that app's `TEST_BEAT_SECONDS`,
   which stands for `cycle_minutes`; beat's due tick is a quarter of it).
3. First round: beat's first tick finds every directory due (none ever ran) and sends them
   all; the round ends when every directory has a finished cycle. Cycles create everything.
4. Steady: beat keeps running for `--steady-rounds` intervals after the first round. The
   files do not change, so each cycle is incremental and cheap: this measures the schedule
   (tick, queue, workers), not the engine. With `--steady-changes` every file changes every
   interval, and each cycle costs what the changed round's do.
5. Changed round: beat stops, the queue drains, every file changes (5 names, one user
   deactivated and the previous one back, one membership moved) and one `sync_directory`
   per directory is sent at once; the round ends with the last cycle. A changed file is
   read in full, so each cycle reads, plans against the store and applies a few changes.

What it measures, from the store's `sync_runs` rows, the messages the due ticks published
(their ledger), and /proc:

- round wall time (first message to last finished cycle), the speed-up over 1 worker, and
  whether it is within 20 % of ideal (time x W <= 1.2 x the 1-worker time);
- for beat's cycles: each directory's wait from due (its previous cycle's start plus the
  interval; beat's start for the first) to its cycle's start, split at the message's send
  time; the longest gap between two cycles of one directory; a directory still due when
  beat stopped counts as waiting until then. "Steady" counts the cycles that fell due
  after the first round ended (before, the first round's backlog decides);
- duplicates: beat cycles skipped because one already ran or was running, and messages
  that expired in the queue;
- CPU seconds (user + system, from /proc) of the worker processes, of the PostgreSQL
  backends serving `bench_many`, of the whole PostgreSQL server (other databases on it
  included), of beat and redis-server; the workers' run-queue wait (/proc schedstat:
  time runnable but without a core); samples of what the bench's backends were doing
  (pg_stat_activity: running, waiting on a lock, idle in a transaction);
- what a full-read cycle loads of the store (`store.load_for_read`: its directory's rows
  and those its records' keys meet) beside the whole store (`load_local_state`, what every
  full read loaded before), each timed alone on the final store;
- the load average at the start and end of each phase;
- with `--kind okta`, the simulator process's CPU and the requests it answered per phase.

With `--json PATH` it also writes, per worker count, the two rounds' wall times, the steady
waits (due -> start) and gaps, the counts and the load average, for `bench/goals.py` (with
`--kind okta`, also `kind` and `latency_ms`).

Results: bench/results/many-directories.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from many_okta import OktaApps  # noqa: E402  (bench/ is the script's directory)
from many_report import Outcome, report, schedule_waits  # noqa: E402
from process_probe import Probe, cpu_seconds  # noqa: E402
from tests.load.cluster import Cluster, beat_runs, read_ledger, wait_until  # noqa: E402
from tests.worker.builders import load, prepare_store, settings_file  # noqa: E402
from worker.app import create_app  # noqa: E402
from worker.tasks import EXPIRED, SYNC_DIRECTORY  # noqa: E402

DATABASE = "bench_many"
LEDGER = "bench:beat"
PG_ADMIN = os.environ.get("DIRSYNC_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")


# --- the directories ------------------------------------------------------------------------


def write_directory(path: Path, name: str, users: int, groups: int, version: int) -> None:
    """One file directory at `version`: from version 1 on, 5 users renamed, user `version`
    inactive (its predecessor active again) and user `version * 7` in the next group."""
    records = []
    for i in range(users):
        renamed = version and (i - version * 5) % users < 5
        records.append({"id": f"{name}-u{i}", "email": f"{name}.u{i}@example.com", "given_name": f"Given{i}",
                        "family_name": f"Family{i}", "display_name": f"User {i} v{version if renamed else 0}",
                        "active": not (version and i == version % users)})
    moved = (version * 7) % users if version else -1
    members: list[list[str]] = [[] for _ in range(groups)]
    for i in range(users):
        first = (i + (1 if i == moved else 0)) % groups
        members[first].append(f"{name}-u{i}")
        if i % 3 == 0 and groups > 1:
            members[(first + 1) % groups].append(f"{name}-u{i}")
    body = {"users": records,
            "groups": [{"id": f"{name}-g{g}", "name": f"{name}-team{g}", "members": m} for g, m in enumerate(members)]}
    part = path.with_suffix(".part")
    part.write_text(json.dumps(body))
    os.replace(part, path)  # a cycle never reads half a file


@dataclass
class Directories:
    folder: Path
    names: list[str]
    users: int
    groups: int
    version: int = 0

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def write(self, version: int) -> None:
        self.version = version
        for name in self.names:
            write_directory(self.path(name), name, self.users, self.groups, version)

    def settings(self, name: str) -> dict[str, Any]:
        return {"kind": "file", "path": str(self.path(name))}

    def snapshot(self, name: str) -> Any:
        from connectors.file import parse

        return parse(json.loads(self.path(name).read_text()))

    def server(self) -> list[int]:
        return []

    def requests(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


# --- one worker count -----------------------------------------------------------------------


def time_full_load(store_url: str, snapshot: Any, directory: str) -> tuple[float, float]:
    """Wall seconds of what a full read of `directory` (its `snapshot`) loads of the store
    (`store.load_for_read`: its own rows and those its records' keys meet), and of the
    whole store (`load_local_state`: every directory's users, groups and memberships, what
    it loaded before), each read alone here."""
    from store import load_for_read, load_local_state, open_store

    store = open_store(store_url)
    try:
        with store.session() as session:
            started = time.perf_counter()
            load_for_read(session, directory, snapshot, links={}, reserved_names=("Administrators",))
            scoped = time.perf_counter() - started
        with store.session() as session:
            started = time.perf_counter()
            load_local_state(session)
            return scoped, time.perf_counter() - started
    finally:
        store.dispose()


def fresh_database(admin: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        info = conn.info
        return f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{DATABASE}"


def drop_database(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def finished_directories(conn: psycopg.Connection[Any], trigger: str, since: datetime | None = None) -> int:
    """How many directories have a finished cycle (not a skipped one) of `trigger`, started
    after `since`: one cheap query on one connection, since the bench polls it while the
    workers run."""
    row = conn.execute(
        "SELECT count(DISTINCT directory) FROM sync_runs WHERE trigger = %s AND finished_at IS NOT NULL"
        " AND status <> 'skipped' AND started_at >= %s",
        (trigger, since or datetime(2000, 1, 1).astimezone()),
    ).fetchone()
    return int(row[0]) if row else 0


def requests_since(dirs: Directories | OktaApps, before: dict[str, int]) -> dict[str, int]:
    """Requests the IdP answered since `before`, per endpoint (none for file directories)."""
    return {k: n - before.get(k, 0) for k, n in sorted(dirs.requests().items()) if n > before.get(k, 0)}


def all_answered(client: redis.Redis, ids: list[str]) -> bool:
    """Every task in `ids` has its result in the backend (done, failed or expired)."""
    return not ids or all(client.mget([f"celery-task-meta-{i}" for i in ids]))


def run_workers(count: int, args: argparse.Namespace, dirs: Directories | OktaApps, folder: Path) -> Outcome:
    store_url = fresh_database(args.pg)
    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    config_path = settings_file(
        folder, {n: dirs.settings(n) for n in dirs.names},
        broker_url=broker, store_url=store_url,
    )
    prepare_store(load(config_path))
    dirs.write(0)
    app = create_app(load(config_path))
    interval = float(args.interval)
    for old in folder.glob("beat*"):  # beat's schedule file: a new beat must tick at once
        old.unlink()
    cluster = Cluster(config_path, folder, ledger=LEDGER)
    probe: Probe | None = None
    phases: dict[str, dict[str, Any]] = {}
    try:
        for n in range(count):
            cluster.worker(f"w{n}", concurrency=1, read_delay=0.0, seconds=interval)
        if not wait_until(lambda: len(app.control.ping(timeout=1.0)) >= count, timeout=90):
            raise SystemExit(f"workers did not answer:\n{cluster.logs()}")
        conninfo = store_url.replace("postgresql+psycopg://", "postgresql://")
        probe = Probe(lambda: {"workers": [p.pid for p in cluster.workers],
                               "beat": [p.pid for p in cluster.beats], "simulator": dirs.server()}, conninfo)
        poll = psycopg.connect(conninfo, autocommit=True)
        names = set(dirs.names)

        # 1. First round: every directory due at once at beat's first tick.
        meter, asked = probe.start(), dirs.requests()
        cluster.beat(0, seconds=interval)
        if not wait_until(lambda: finished_directories(poll, "beat") >= len(names), timeout=1800):
            raise SystemExit(f"the first round did not finish:\n{cluster.logs()}")
        phases["first"] = {**probe.stop(meter), "requests": requests_since(dirs, asked)}
        first_sent = min(read_ledger(client, LEDGER).sent_at.values())
        first_end = max(r.finished_at for r in beat_runs(store_url) if r.finished_at is not None).timestamp()
        first_round = first_end - first_sent

        # 2. Steady: beat goes on (with --steady-changes every file changes every interval).
        meter, asked = probe.start(), dirs.requests()
        steady_end = time.monotonic() + args.steady_rounds * interval
        version = 0
        while time.monotonic() < steady_end:
            if args.steady_changes:
                version += 1
                dirs.write(version)
            time.sleep(max(0.0, min(interval, steady_end - time.monotonic())))
        beat_stopped = time.time()
        beat_cpu = sum(cpu_seconds(p) for p in probe.pids()["beat"])
        cluster.stop_beats()
        ledger_ids = list(read_ledger(client, LEDGER).sent)
        drained = wait_until(lambda: all_answered(client, ledger_ids), timeout=600, every=1.0)
        phases["steady"] = {**probe.stop(meter), "requests": requests_since(dirs, asked)}
        if not drained:
            raise SystemExit(f"scheduled cycles still queued 10 minutes after beat stopped:\n{cluster.logs()}")

        # 3. Changed round: every directory at once, each with a changed file.
        dirs.write(version + 1)
        meter, asked = probe.start(), dirs.requests()
        since = datetime.fromtimestamp(time.time()).astimezone()
        sent = time.time()
        for name in dirs.names:
            app.send_task(SYNC_DIRECTORY, args=(name,))
        if not wait_until(lambda: finished_directories(poll, "task", since) >= len(names), timeout=1800):
            raise SystemExit(f"the changed round did not finish:\n{cluster.logs()}")
        phases["changed"] = {**probe.stop(meter), "requests": requests_since(dirs, asked)}
        changed_runs = [r for r in beat_runs(store_url) if r.trigger == "task" and r.started_at >= since]
        changed_round = max(r.finished_at for r in changed_runs).timestamp() - sent

        load_seconds = time_full_load(store_url, dirs.snapshot(dirs.names[0]), dirs.names[0])
        ledger = read_ledger(client, LEDGER)
        results = {i: app.AsyncResult(i) for i in ledger.sent}
        run_of = {i: r.result.get("run_id") for i, r in results.items()
                  if r.successful() and isinstance(r.result, dict)}
        runs = beat_runs(store_url)
        poll.close()
    finally:
        if probe is not None:
            probe.close()
        cluster.stop_all()
        app.close()
        client.flushdb()
        client.close()

    waits, sent_waits, gaps = schedule_waits(runs, ledger.sent_at, run_of, interval, first_end, beat_stopped)
    beat_rows = [r for r in runs if r.trigger == "beat"]
    counts = {
        "beat cycles": sum(r.status != "skipped" for r in beat_rows),
        "skipped: already ran or running": sum(
            r.status == "skipped" and r.error != EXPIRED for r in beat_rows),
        "expired in the queue": sum(r.error == EXPIRED for r in beat_rows),
        "failed": sum(r.status not in ("succeeded", "skipped") for r in runs),
        "messages sent by the ticks": len(ledger.sent),
    }
    return Outcome(count, first_round, changed_round, phases, waits, sent_waits, gaps, counts,
                   [(r.finished_at - r.started_at).total_seconds() for r in changed_runs], beat_cpu, load_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("file", "okta"), default="file",
                        help="file directories (default), or Okta directories in app scope of one simulated org")
    parser.add_argument("--latency-ms", type=float, default=100.0,
                        help="with --kind okta: milliseconds the simulator adds to every request")
    parser.add_argument("--directories", type=int, default=200)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--workers", default="1,3", help="worker counts, comma-separated (1 first: the base)")
    parser.add_argument("--interval", type=int, default=30, help="every directory's interval, seconds")
    parser.add_argument("--steady-rounds", type=int, default=2, help="intervals of beat after the first round")
    parser.add_argument("--steady-changes", action="store_true",
                        help="change every file every interval while beat runs (cycles then cost what the changed"
                             " round's do: more than the interval allows at the default size)")
    parser.add_argument("--pg", default=PG_ADMIN, help="libpq conninfo of a database to create bench_many from")
    parser.add_argument("--redis-db", type=int, default=6, help="the bench's own Redis database (flushed)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the outcomes as JSON")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    outcomes = []
    changes: dict[int, list[dict[str, int]]] = {}  # Okta: the changes made to every app, per worker count
    with tempfile.TemporaryDirectory(prefix="bench-many-") as tmp:
        folder = Path(tmp)
        names = [f"d{i:03d}" for i in range(args.directories)]
        files = Directories(folder, names, args.users, args.groups)
        try:
            for count in counts:
                print(f"{count} worker(s), load average {os.getloadavg()[0]:.1f} ...", file=sys.stderr, flush=True)
                dirs: Directories | OktaApps = files
                if args.kind == "okta":  # a fresh org for each worker count: the same data, the same changes
                    dirs = OktaApps(names, args.users, args.groups, args.latency_ms)
                    print(f"org built in {dirs.info['generated']:.1f} s", file=sys.stderr, flush=True)
                try:
                    outcomes.append(run_workers(count, args, dirs, folder))
                finally:
                    dirs.close()
                if isinstance(dirs, OktaApps):
                    changes[count] = dirs.changes
        finally:
            drop_database(args.pg)
    print(report(outcomes, args))
    for count, made in changes.items():
        print(f"\n{count} worker(s): changes made to the apps (all apps together), in turn: {made}")
    if args.json:
        okta = {"kind": "okta", "latency_ms": args.latency_ms} if args.kind == "okta" else {}
        args.json.write_text(json.dumps({
            "bench": "many", **okta, "directories": args.directories, "users": args.users, "interval": args.interval,
            "outcomes": [{"workers": o.workers, "first_round": o.first_round, "changed_round": o.changed_round,
                          "waits": o.waits, "gaps": o.gaps, "counts": o.counts,
                          "load": [[p["load"][0][0], p["load"][1][0]] for p in o.phases.values()]}
                         for o in outcomes]}, indent=1))


if __name__ == "__main__":
    main()
