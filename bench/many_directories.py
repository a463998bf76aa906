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
import multiprocessing as mp
import os
import statistics
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

from process_probe import Probe, cpu_seconds  # noqa: E402  (bench/ is the script's directory)
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


# --- or apps of one simulated Okta org ------------------------------------------------------

TOKEN_ENV = "BENCH_OKTA_TOKEN"  # the workers inherit it (the cluster passes the environment on)


@dataclass
class App:
    id: str
    users: list[str]  # its users, in order (a deactivated one loses its direct assignment)
    groups: list[str]


def build_org(names: list[str], users: int, groups: int) -> tuple[Any, dict[str, App]]:
    """One org holding an app per directory: the app's `users` users assigned directly and its
    `groups` groups assigned (every user in one, every third in the next one too), so each
    app-scoped directory reads only its own users; no user or group is in two apps. Built in
    bulk (`OktaOrg.generate` for the records, then the assignments), so no log events."""
    from simulators.okta import OktaOrg

    org = OktaOrg.generate(users=len(names) * users, groups=len(names) * groups, memberships=0)
    group_ids = [g for g in org.group_ids if g != org.everyone_id]
    apps: dict[str, App] = {}
    with org.lock:
        stamp = org.now()
        for d, name in enumerate(names):
            app = org.create_app(name)
            own = org.user_ids[d * users:(d + 1) * users]
            teams = group_ids[d * groups:(d + 1) * groups]
            apps[name] = App(app, own, teams)
            for i, uid in enumerate(own):
                org.app_users[app][uid] = stamp
                org.members[teams[i % groups]].add(uid)
                if i % 3 == 0 and groups > 1:
                    org.members[teams[(i % groups + 1) % groups]].add(uid)
            for gid in teams:
                org.app_groups[app][gid] = stamp
        org.version += 1
    return org, apps


def change_apps(org: Any, apps: dict[str, App], step: int) -> dict[str, int]:
    """Change every app's users through the org's admin actions, so the System Log records
    it as Okta would (`okta_bench.change_one_percent` does the same to 1 % of an org): 5
    renamed, one deactivated (Okta drops its direct assignment; its groups keep it in the app
    once it is back), the one the step before deactivated reactivated, one moved to another
    group."""
    done = {"renamed": 0, "deactivated": 0, "reactivated": 0, "moved": 0}
    with org.lock:
        for app in apps.values():
            own, teams, users = app.users, app.groups, len(app.users)
            for k in range(5):
                org.rename(own[(step * 5 + k) % users], last_name=f"Renamed{step}")
                done["renamed"] += 1
            org.deactivate(own[step % users])
            done["deactivated"] += 1
            previous = own[(step - 1) % users]
            if org.users[previous]["status"] == "DEPROVISIONED":
                org.reactivate(previous)
                done["reactivated"] += 1
            moved = own[(step * 7) % users]
            current = [g for g in teams if moved in org.members[g]]
            if current and len(current) < len(teams):
                org.remove_member(current[0], moved)
                org.add_member(next(g for g in teams if g not in current), moved)
                done["moved"] += 1
    return done


def serve_org(names: list[str], users: int, groups: int, latency: float, control: Any) -> None:
    """The org's simulator, in its own process (its CPU is not the workers'), with rate limits
    lifted (`okta_bench`: the point is the cycles, not Okta's quota) and `latency` seconds
    added to every request; answers the bench's commands on `control` until told to stop:
    "counts" (requests per endpoint so far), "change" (`change_apps`, answering what it did)."""
    from okta_bench import UNLIMITED

    from simulators.okta import OktaSimulator

    started = time.perf_counter()
    org, apps = build_org(names, users, groups)
    sim = OktaSimulator(org, rate_limits=UNLIMITED).start()
    sim.latency(latency)
    for uid in org.user_ids:  # serialise once, as a long-running org would have
        org.user_bytes(uid)
    control.send({"base_url": sim.base_url, "token": sim.api_token, "ca_path": sim.ca_path,
                  "apps": {name: app.id for name, app in apps.items()}, "generated": time.perf_counter() - started})
    step = 0
    while True:
        command = control.recv()
        if command == "counts":
            control.send(sim.counts())
        elif command == "change":
            step += 1
            control.send(change_apps(org, apps, step))
        else:
            sim.stop()
            control.send(None)
            return


class OktaApps:
    """The directories as apps of one simulated Okta org: each directory reads in app scope
    (`app_id`), all with the same `org_url`, token and CA bundle. `write(0)` leaves the org
    as it is (a fresh store reads it whole); any other version makes one more change to
    every app (`change_apps`)."""

    def __init__(self, names: list[str], users: int, groups: int, latency_ms: float) -> None:
        self.names, self.users, self.groups, self.latency_ms = names, users, groups, latency_ms
        self.version = 0
        self.changes: list[dict[str, int]] = []
        self.control, child = mp.Pipe()
        self.process = mp.Process(target=serve_org, args=(names, users, groups, latency_ms / 1000, child),
                                  daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.control.recv()
        os.environ[TOKEN_ENV] = self.info["token"]

    def settings(self, name: str) -> dict[str, Any]:
        return {"kind": "okta", "org_url": self.info["base_url"], "token_env": TOKEN_ENV,
                "ca_bundle": self.info["ca_path"], "app_id": self.info["apps"][name]}

    def write(self, version: int) -> None:
        self.version = version
        if version:
            self.control.send("change")
            self.changes.append(self.control.recv())

    def snapshot(self, name: str) -> Any:
        """What a full read of `name` returns (read here, through the simulator's latency)."""
        from okta_bench import connector_for

        return connector_for({**self.info, "app_id": self.info["apps"][name]}).read(None)

    def server(self) -> list[int]:
        return [self.process.pid] if self.process.pid else []

    def requests(self) -> dict[str, int]:
        self.control.send("counts")
        counts: dict[str, int] = self.control.recv()
        return counts

    def close(self) -> None:
        if self.process.is_alive():
            self.control.send("stop")
            self.control.recv()
        self.process.join(timeout=10)


# --- one worker count -----------------------------------------------------------------------


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
