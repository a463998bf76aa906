"""Benchmark: the Entra connector against the Graph simulator at 100,000 users.

    python bench/graph_bench.py [--users 100000 --groups 2000 --memberships 200000]
                                [--engine] [--repeat 3] [--hired-after-minutes 20]
                                [--out bench/results/entra.md] [--store URL] [--json PATH]

The simulator runs in its own process (so its memory and CPU are not the reader's); each
measured phase runs in a fresh child process, so its peak RSS is its own:

    floor        plain requests + json: follow both delta chains, parse every page
    full         GraphConnector.read(None)
    noop         read(watermark) with nothing changed
    changed-1%   read(watermark) after 1% of users and of memberships changed
    engine-*     the same three through reconcile.cycle.run_cycle on SQLite (--engine); on
                 the store `--store` names instead (an empty database, migrated first); the
                 wall and CPU time are the cycle's, after the connector's modules are imported
                 and the store is opened, as okta_bench times its cycles

Each 1% change is made `--hired-after-minutes` after the read before it, by Graph's clock
(the hires' `createdDateTime`), as between two scheduled cycles; 0 makes it at once, within
the connector's clock margin. Reports wall time, CPU seconds (user + sys of the phase's
process), peak RSS and requests per endpoint of each phase as a Markdown table; with
`--json PATH` also as JSON (`phases`: key, wall and CPU seconds, peak RSS in MiB from
`ru_maxrss`, requests per endpoint, summary; the 1% change, the store, the load average at
the start and the end), for `bench/goals.py`.
Never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# --- the simulator process ----------------------------------------------------------------


def _serve(conn: Connection, users: int, groups: int, memberships: int, seed: int) -> None:
    from simulators.graph import GraphSimulator, GraphTenant

    started = time.perf_counter()
    tenant = GraphTenant.generate(users=users, groups=groups, memberships=memberships, seed=seed)
    generated = time.perf_counter() - started
    sim = GraphSimulator(tenant)
    sim.start()
    conn.send({"base": sim.base_url, "ca": sim.ca_path, "tenant": tenant.tenant_id,
               "client": tenant.client_id, "secret": tenant.client_secret,
               "generated": generated})
    rng = random.Random(seed + 1)
    while True:
        command, arg = conn.recv()
        if command == "counts":
            conn.send(sim.counts())
            sim.reset_counts()
        elif command == "mutate":
            fraction, minutes = arg
            later = timedelta(minutes=minutes)
            tenant.clock = lambda: datetime.now(UTC) + later
            conn.send(_mutate(tenant, rng, fraction))
        elif command == "stop":
            sim.stop()
            conn.send(None)
            return


def _mutate(tenant: Any, rng: random.Random, fraction: float) -> dict[str, int]:
    """Change `fraction` of the users and of the memberships, in realistic proportions."""
    with tenant.lock:
        live = [u for u in tenant.user_order if u in tenant.users and not tenant.users[u].deleted]
        changed = rng.sample(live, int(len(live) * fraction))
        done = {"renamed": 0, "disabled": 0, "soft-deleted": 0, "hired": 0, "memberships": 0}
        for i, uid in enumerate(changed):
            kind = i % 10
            if kind < 5:
                tenant.rename_upn(uid, f"renamed{i}-{uid[:8]}@contoso.example")
                done["renamed"] += 1
            elif kind < 8:
                tenant.disable(uid)
                done["disabled"] += 1
            elif kind < 9:
                tenant.soft_delete(uid)
                done["soft-deleted"] += 1
            else:
                tenant.hire()
                done["hired"] += 1
        total = sum(len(g.members) for g in tenant.groups.values())
        for _ in range(int(total * fraction)):
            gid = rng.choice(tenant.group_order)
            group = tenant.groups[gid]
            if group.members and rng.random() < 0.5:
                tenant.remove_member(gid, next(iter(group.members)))
            else:
                uid = rng.choice(live)
                if not tenant.users[uid].deleted:
                    tenant.add_member(gid, uid)
            done["memberships"] += 1
        return done


# --- measured phases (each in a child process) ---------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor(info: dict[str, Any]) -> dict[str, Any]:
    """Fetch and parse every delta page with plain requests + json: no connector logic."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca"]
    base = info["base"]
    token = session.post(f"{base}/{info['tenant']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": info["client"],
        "client_secret": info["secret"], "scope": f"{base}/.default"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    items = [0, 0]

    def chain(index: int, url: str) -> None:
        while url:
            page = json.loads(session.get(url, headers=headers).content)
            items[index] += len(page["value"])
            url = page.get("@odata.nextLink")

    started = time.perf_counter()
    threads = [threading.Thread(target=chain, args=(0, f"{base}/v1.0/users/delta?$select=id,"
                                "userPrincipalName,mail,givenName,surname,displayName,"
                                "accountEnabled")),
               threading.Thread(target=chain, args=(1, f"{base}/v1.0/groups/delta?$select=id,"
                                "displayName,members"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - started, "rss": _peak_rss_mib(),
            "note": f"{items[0]} user items, {items[1]} group items"}


def _directory(info: dict[str, Any]) -> Any:
    from config import parse

    table = {"kind": "entra", "tenant_id": info["tenant"], "client_id": info["client"],
             "client_secret_env": "BENCH_ENTRA_SECRET", "authority_host": info["base"],
             "graph_url": info["base"], "ca_bundle": info["ca"]}
    return parse({"directories": {"entra": table}}, {})


def _read(info: dict[str, Any], watermark: str | None) -> dict[str, Any]:
    from connectors.graph import build
    from reconcile.model import Snapshot

    os.environ["BENCH_ENTRA_SECRET"] = info["secret"]
    settings = _directory(info)
    connector = build(settings, settings.directory("entra"))
    started = time.perf_counter()
    connector.tokens.token()  # discovery + token: once per worker process, then cached
    token_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = connector.read(watermark)
    seconds = time.perf_counter() - started
    connector.close()
    if isinstance(result, Snapshot):
        note = f"Snapshot: {len(result.users)} users, {len(result.groups)} groups, " \
               f"{len(result.rejections)} rejected"
    else:
        note = (f"Changes: {len(result.users)} users, {len(result.removed_user_ids)} removed, "
                f"{len(result.groups)} groups, {len(result.memberships)} membership deltas")
    return {"seconds": seconds, "rss": _peak_rss_mib(), "watermark": result.watermark,
            "note": f"{note}; msal discovery+token before it {token_seconds:.2f} s"}


def _engine(info: dict[str, Any], store_url: str, full: bool) -> dict[str, Any]:
    from config import parse
    from reconcile.cycle import run_cycle

    os.environ["BENCH_ENTRA_SECRET"] = info["secret"]
    table = {"kind": "entra", "tenant_id": info["tenant"], "client_id": info["client"],
             "client_secret_env": "BENCH_ENTRA_SECRET", "authority_host": info["base"],
             "graph_url": info["base"], "ca_bundle": info["ca"]}
    # The 1 % change deactivates about 400 users and removes about 1,700 memberships at
    # 100,000 users (ten times as many at a million): over the default limits of 1,000
    # removals (and at a million, 500 deactivations). The limits are lifted, so that a cycle
    # measures the sync, not the record of an approved plan that `allow_deactivations`
    # below writes when a limit trips (the whole plan, as JSON).
    settings = parse({"store": {"url": store_url},
                      "safety": {"max_deactivations": 1_000_000, "max_deactivation_ratio": 1.0,
                                 "max_member_removals": 10_000_000, "max_member_removal_ratio": 1.0},
                      "directories": {"entra": table}}, {})
    # What a process has done before its first cycle, as okta_bench's cycles: the
    # connector's modules imported and the store opened (its driver imported).
    import connectors.graph  # noqa: F401
    from store import open_store

    store = open_store(store_url)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_cycle(settings, "entra", store=store, full=full, allow_deactivations=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.dispose()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()) if v)
    return {"seconds": seconds, "cpu": cpu, "rss": _peak_rss_mib(),
            "note": f"{result.status} ({result.mode}) {counts} {result.error or ''}".strip()}


def _upgrade(store_url: str) -> dict[str, Any]:
    from store import open_store

    store = open_store(store_url, check_schema=False)
    store.upgrade()
    store.dispose()
    return {}


def _child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()

    def run() -> None:
        out = target(*args)
        usage = resource.getrusage(resource.RUSAGE_SELF)  # this child's own, from its fork
        # A phase that timed its own CPU (the engine's cycles) keeps it; others, the child's.
        child.send({"cpu": usage.ru_utime + usage.ru_stime, **out})

    process = ctx.Process(target=run)
    process.start()
    out: dict[str, Any] = parent.recv()
    process.join()
    return out


# --- driver ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", action="store_true", help="also run cycles through the engine")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of floor and full, alternating; the fastest of each is kept")
    parser.add_argument("--hired-after-minutes", type=float, default=20,
                        help="Graph time between a read and the 1%% change after it")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--store", default=None,
                        help="the engine's store: URL of an empty database (default: a scratch SQLite file, removed at the end)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the phases as JSON")
    args = parser.parse_args()
    load_before = os.getloadavg()

    ctx = mp.get_context("spawn")
    control, remote = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(remote, args.users, args.groups,
                                              args.memberships, args.seed), daemon=True)
    server.start()
    info = control.recv()
    rows: list[tuple[str, dict[str, Any], dict[str, int]]] = []

    def phase(name: str, target: Any, *extra: Any) -> dict[str, Any]:
        control.send(("counts", None))
        control.recv()
        out = _child(target, *extra)
        control.send(("counts", None))
        rows.append((name, out, control.recv()))
        print(f"{name:12} {out['seconds']:8.2f}s {out['cpu']:8.2f} CPU s {out['rss']:8.0f} MiB  "
              f"{sum(rows[-1][2].values())} requests  {out['note']}", flush=True)
        return out

    def mutate() -> dict[str, int]:
        control.send(("mutate", (0.01, args.hired_after_minutes)))
        changed: dict[str, int] = control.recv()
        return changed

    def best(name: str, runs: list[tuple[dict[str, Any], dict[str, int]]]) -> dict[str, Any]:
        out, counts = min(runs, key=lambda run: float(run[0]["seconds"]))
        out = {**out, "note": out["note"] + "; runs: " + ", ".join(
            f"{r[0]['seconds']:.2f}" for r in runs)}
        rows.append((name, out, counts))
        return out

    floors: list[tuple[dict[str, Any], dict[str, int]]] = []
    fulls: list[tuple[dict[str, Any], dict[str, int]]] = []
    for _ in range(args.repeat):  # alternate, so load on the machine hits both alike
        phase("floor", _floor, info)
        floors.append(rows.pop()[1:])
        phase("full", _read, info, None)
        fulls.append(rows.pop()[1:])
    best("floor", floors)
    full = best("full", fulls)
    noop = phase("noop", _read, info, full["watermark"])
    changes = mutate()
    phase("changed-1%", _read, info, noop["watermark"])
    if args.engine:
        # The default store is a scratch SQLite file, removed with its folder at the end
        # (2 GB at a million users).
        with tempfile.TemporaryDirectory(prefix="dirsync-bench-") as scratch:
            store_url = args.store or f"sqlite:///{Path(scratch) / 'bench.db'}"
            _child(_upgrade, store_url)  # as `dirsync db upgrade` would; in a child, so this process stays small
            phase("engine-full", _engine, info, store_url, True)
            phase("engine-noop", _engine, info, store_url, False)
            mutate()
            phase("engine-1%", _engine, info, store_url, False)
    control.send(("stop", None))
    control.recv()

    report = _report(args, info, rows, changes)
    print(report)
    if args.out:
        args.out.write_text(report)
    if args.json:
        kind = None if not args.engine else "PostgreSQL" if (args.store or "").startswith("postgresql") else "SQLite"
        phases = [{"key": name, "wall": out["seconds"], "cpu": out["cpu"], "peak_rss_mib": out["rss"],
                   "summary": out["note"], "requests": counts} for name, out, counts in rows]
        args.json.write_text(json.dumps({
            "bench": "entra", "users": args.users, "groups": args.groups, "memberships": args.memberships,
            "store": kind, "change": changes, "load": [load_before, os.getloadavg()], "phases": phases}, indent=1))


def _report(args: argparse.Namespace, info: dict[str, Any],
            rows: list[tuple[str, dict[str, Any], dict[str, int]]],
            changes: dict[str, int]) -> str:
    lines = [
        f"Tenant: {args.users:,} users, {args.groups:,} groups, {args.memberships:,} "
        f"memberships (seed {args.seed}); generated in {info['generated']:.1f} s.",
        f"1% change set: {changes}, made {args.hired_after_minutes:g} min after the read before it.",
        "",
        "| phase | wall s | CPU s | peak RSS MiB | requests per endpoint | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, out, counts in rows:
        requests = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"| {name} | {out['seconds']:.2f} | {out['cpu']:.2f} | {out['rss']:.0f} | "
                     f"{requests} | {out['note']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
