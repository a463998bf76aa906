"""Okta connector benchmark: 100,000 users / 2,000 groups / 200,000 memberships.

    /work/venv/bin/python bench/okta_bench.py [--users N --groups M --memberships K] [--cycles] [--app]
        [--store URL] [--json PATH]

The simulator runs in its own process (so the client does not share a GIL with it), with
rate limits lifted: the point is the connector's own cost, not Okta's quota. Each measured
phase runs in a fresh child process so its peak RSS is its own:

- floor: the same pages fetched and JSON-parsed with plain aiohttp (users at 200 per page,
  groups at 10,000, every group's members at 1,000, four requests in flight), no SDK,
  no mapping, no engine; each page's records are counted and dropped, only the groups kept
  (for their member pages);
- full read: `OktaConnector.read(None)`;
- no-op incremental read: `read(watermark)` right after, nothing changed;
- with `--cycles`: a full cycle, a no-op cycle and a 1 % change cycle through
  `reconcile.cycle.run_cycle` on SQLite (a new file), or on the store `--store` names (an
  empty database: the first cycle creates everything; the bench migrates it). The 1 %
  change (`change_one_percent`) touches 1 % of the users through the org's admin actions,
  so the System Log records it as Okta
  would: a third renamed, a third deactivated, a third moved from one of their groups to
  another (or added to one, if they had none). It is read once by the connector alone
  (from the no-op read's watermark), then by a cycle. Then, with nothing changed, the read
  right after the connector's (from its watermark) and a cycle right after the change cycle:
  both within `overlap_minutes` of the read before, whose group filter lists again every
  group the change touched.

With `--app`, the connector reads in app scope (`app_id`): the org gets an app with half of
its users assigned directly and a fifth of its groups assigned (members of those groups are
in scope too), and every phase, the floor included, reads the app's users, groups and
those groups' members instead of the whole org's.

Prints a Markdown table (wall time, the measuring process's CPU seconds, peak RSS, requests per
endpoint). With `--json PATH` it also writes each phase's figures there (`phases`: key, label,
wall and CPU seconds, peak RSS in MiB from `ru_maxrss`, requests per endpoint, summary; and
the 1 % change made, the store, the load average at the start and the end), for
`bench/goals.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNLIMITED = {name: 10**9 for name in ("users.list", "users.get", "groups.list", "groups.id", "apps", "logs", "oauth")}


def answer_commands(sim: Any, control: Any) -> None:
    """Serve the bench's requests on `control` until told to stop: "counts" (requests per
    endpoint so far), "reset" (zero them), "change" (`change_one_percent`, answering what it
    did), anything else stops the simulator."""
    while True:
        command = control.recv()
        if command == "counts":
            control.send(sim.counts())
        elif command == "reset":
            sim.reset_counts()
            control.send(None)
        elif command == "change":
            control.send(change_one_percent(sim.org, random.Random(2)))
        else:
            sim.stop()
            control.send(None)
            return


def change_one_percent(org: Any, rng: random.Random) -> dict[str, int]:
    """Rename, deactivate or move to another group 1 % of the active users (a third each)."""
    with org.lock:
        live = [u for u in org.user_ids if org.users[u]["status"] == "ACTIVE"]
        chosen = rng.sample(live, max(1, len(live) // 100))
        groups = [g for g in org.group_ids if org.groups[g]["type"] != "BUILT_IN"]
        done = {"renamed": 0, "deactivated": 0, "moved": 0}
        for i, uid in enumerate(chosen):
            if i % 3 == 0:
                org.rename(uid, last_name=f"Renamed{i}")
                done["renamed"] += 1
            elif i % 3 == 1:
                org.deactivate(uid)
                done["deactivated"] += 1
            else:
                current = [g for g in groups if uid in org.members[g]]
                if current:
                    org.remove_member(rng.choice(current), uid)
                org.add_member(rng.choice([g for g in groups if g not in current]), uid)
                done["moved"] += 1
        return done


def serve(args: argparse.Namespace, control: Any) -> None:
    from simulators.okta import OktaOrg, OktaSimulator

    started = time.perf_counter()
    app_users, app_groups = (args.users // 2, args.groups // 5) if args.app else (0, 0)
    org = OktaOrg.generate(users=args.users, groups=args.groups, memberships=args.memberships, seed=args.seed,
                           app_users=app_users, app_groups=app_groups)
    generated = time.perf_counter() - started
    sim = OktaSimulator(org, rate_limits=UNLIMITED).start()
    for uid in org.user_ids:  # serialise once, as a long-running org would have
        org.user_bytes(uid)
    control.send({"base_url": sim.base_url, "token": sim.api_token, "ca_path": sim.ca_path, "generated": generated,
                  "app_id": org.app_id if args.app else None})
    answer_commands(sim, control)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def floor(info: dict[str, Any]) -> int:
    """Fetch and parse every page a full read fetches; count the records. Only the groups are
    kept (their ids give the member pages): holding every parsed record as well would make the
    floor pay for a heap the connector does not build (at 100,000 users 850 MB of dicts and the
    collector's passes over them, about twice the fetch-and-parse time)."""
    import aiohttp

    context = ssl.create_default_context(cafile=info["ca_path"])
    headers = {"Authorization": f"SSWS {info['token']}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=4)) as session:
        slots = asyncio.Semaphore(4)

        async def all_pages(url: str, keep: bool = False) -> tuple[int, list[Any]]:
            count, kept = 0, []
            next_url: str | None = info["base_url"] + url
            while next_url:
                async with slots, session.get(next_url, headers=headers) as response:
                    body = await response.read()
                    link = response.links.get("next")
                records = json.loads(body)
                count += len(records)
                if keep:
                    kept.extend(records)
                next_url = str(link["url"]) if link else None
            return count, kept

        app = info.get("app_id")
        if app:
            (users, _), (_, assigned) = await asyncio.gather(
                all_pages(f"/api/v1/apps/{app}/users?limit=500&expand=user"),
                all_pages(f"/api/v1/apps/{app}/groups?limit=200&expand=group", keep=True))
            groups = [a["_embedded"]["group"] for a in assigned]
        else:
            (users, _), (_, groups) = await asyncio.gather(all_pages("/api/v1/users?limit=200"),
                                                           all_pages("/api/v1/groups?limit=10000", keep=True))
        members = await asyncio.gather(*(all_pages(f"/api/v1/groups/{g['id']}/users?limit=1000")
                                         for g in groups if g["type"] != "BUILT_IN"))
        return users + sum(count for count, _ in members)


def import_sdk_request_path() -> None:
    """Import the SDK modules a read uses (`connectors.okta_http` builds its executor from
    them, never importing `okta.client`), so their import is not timed as part of a phase
    and the phase's peak RSS is what a `dirsync sync` process holds."""
    import okta.cache.no_op_cache  # noqa: F401
    import okta.config.config_setter  # noqa: F401
    import okta.config.config_validator  # noqa: F401
    import okta.http_client  # noqa: F401
    import okta.request_executor  # noqa: F401


def connector_for(info: dict[str, Any]) -> Any:
    from config import OktaDirectorySettings
    from connectors.okta import ApiToken, OktaConnector

    context = ssl.create_default_context()
    context.load_verify_locations(cafile=info["ca_path"])
    directory = OktaDirectorySettings(name="okta", kind="okta", org_url=info["base_url"], token_env="X",
                                      app_id=info.get("app_id"))
    return OktaConnector(directory, ApiToken(info["token"]), ssl_context=context)


def phase(name: str, info: dict[str, Any], out: Any, watermark: str | None) -> None:
    """One measured phase in this (fresh) process; sends (seconds, CPU seconds, peak MB, summary,
    watermark). CPU is this process's user + system time: the client's, not the simulator's."""
    if name == "floor":
        started, cpu = time.perf_counter(), time.process_time()
        items = asyncio.run(floor(info))
        out.send((time.perf_counter() - started, time.process_time() - cpu, peak_rss_mb(), f"{items} records parsed",
                  None))
        return
    if name in ("full", "noop"):
        import_sdk_request_path()
        from reconcile.model import Changes

        connector = connector_for(info)
        started, cpu = time.perf_counter(), time.process_time()
        result = connector.read(None if name == "full" else watermark)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        summary = f"{type(result).__name__}: {len(result.users)} users, {len(result.groups)} groups"
        if isinstance(result, Changes):
            summary += f", {len(result.memberships)} membership deltas"
        out.send((elapsed, cpu, peak_rss_mb(), summary, result.watermark))
        return
    from config import parse
    from reconcile.cycle import run_cycle
    from store import open_store

    import_sdk_request_path()

    store = open_store(info["store_url"], check_schema=False)
    store.upgrade()
    settings = parse({"store": {"url": info["store_url"]}, "directories": {"okta": {
        "kind": "okta", "org_url": info["base_url"], "token_env": "X", "ca_bundle": info["ca_path"],
        **({"app_id": info["app_id"]} if info.get("app_id") else {})}}}, {})
    started, cpu = time.perf_counter(), time.process_time()
    result = run_cycle(settings, "okta", store=store, connector=connector_for(info), allow_deactivations=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.dispose()
    operations = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()) if not k.startswith("outcome:"))
    summary = f"{result.status} ({result.mode}) {result.error or operations}".strip()
    out.send((elapsed, cpu, peak_rss_mb(), summary, None))


def run_phase(name: str, info: dict[str, Any], control: Any, watermark: str | None = None) -> tuple[Any, ...]:
    control.send("reset")
    control.recv()
    receive, send = mp.Pipe(duplex=False)
    child = mp.Process(target=phase, args=(name, info, send, watermark))
    child.start()
    outcome = receive.recv()
    child.join()
    control.send("counts")
    return (*outcome, control.recv())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cycles", action="store_true", help="also run cycles through the engine on SQLite")
    parser.add_argument("--app", action="store_true", help="read in app scope (see the module docstring)")
    parser.add_argument("--store", default=None,
                        help="the cycles' store: URL of an empty database (default: a new SQLite file)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the phases as JSON")
    args = parser.parse_args()
    load_before = os.getloadavg()

    control, child_end = mp.Pipe()
    server = mp.Process(target=serve, args=(args, child_end), daemon=True)
    server.start()
    info: dict[str, Any] = control.recv()
    print(f"org generated in {info['generated']:.1f} s: {args.users} users, {args.groups} groups, "
          f"{args.memberships} memberships" + (f", app scope ({info['app_id']})" if args.app else ""), flush=True)

    rows: list[tuple[str, float, float, float, str, dict[str, int]]] = []
    keys: list[str] = []  # each row's key in the JSON
    changed: dict[str, int] = {}

    def record(label: str, outcome: tuple[Any, ...], key: str) -> None:
        seconds, cpu, peak, summary, _, counts = outcome
        rows.append((label, seconds, cpu, peak, summary, counts))
        keys.append(key)
        print(f"{label}: {seconds:.2f} s, CPU {cpu:.2f} s, peak RSS {peak:.0f} MB, {summary}, {counts}", flush=True)

    run_phase("floor", info, control)  # warm-up: TLS, server caches
    record("floor (aiohttp + json, no SDK)", run_phase("floor", info, control), "floor")
    full = run_phase("full", info, control)
    record("full read (connector)", full, "full_read")
    noop = run_phase("noop", info, control, full[4])
    record("no-op incremental read", noop, "noop_read")
    kind = "PostgreSQL" if args.store and args.store.startswith("postgresql") else "SQLite"
    if args.cycles:
        with tempfile.TemporaryDirectory() as scratch:
            info["store_url"] = args.store or f"sqlite:///{os.path.join(scratch, 'bench.db')}"
            record(f"full cycle (engine, {kind})", run_phase("cycle", info, control), "full_cycle")
            record(f"no-op cycle (engine, {kind})", run_phase("cycle", info, control), "noop_cycle")
            control.send("change")
            changed = control.recv()
            print(f"1 % change: {changed}", flush=True)
            # the connector alone, from the no-op read's watermark (nothing else changed since)
            changed_read = run_phase("noop", info, control, noop[4])
            record("1 % changed read (connector)", changed_read, "changed_read")
            record("next read within the overlap, nothing changed (connector)",
                   run_phase("noop", info, control, changed_read[4]), "overlap_read")
            record(f"1 % change cycle (engine, {kind})", run_phase("cycle", info, control), "change_cycle")
            record(f"next cycle within the overlap, nothing changed (engine, {kind})",
                   run_phase("cycle", info, control), "overlap_cycle")

    control.send("stop")
    control.recv()
    print()
    print("| phase | wall time | CPU | peak RSS | result | requests |")
    print("|---|---:|---:|---:|---|---|")
    for label, seconds, cpu, peak, summary, counts in rows:
        requests = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"| {label} | {seconds:.2f} s | {cpu:.2f} s | {peak:.0f} MB | {summary} | {requests} "
              f"(total {sum(counts.values())}) |")
    ratio: Callable[[int], float] = lambda i: rows[i][1] / rows[0][1]
    print(f"\nfull read / floor = {ratio(1):.2f}x; load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.cycles:
        full_cycle, change_cycle = rows[3], rows[7]
        print(f"1 % change cycle / full cycle = {change_cycle[1] / full_cycle[1]:.1%} of the time, "
              f"{change_cycle[2] / full_cycle[2]:.1%} of the CPU, "
              f"{sum(change_cycle[5].values())} vs {sum(full_cycle[5].values())} requests")
    if args.json:
        phases = [{"key": key, "label": label, "wall": seconds, "cpu": cpu, "peak_rss_mib": peak, "summary": summary,
                   "requests": counts}
                  for key, (label, seconds, cpu, peak, summary, counts) in zip(keys, rows, strict=True)]
        args.json.write_text(json.dumps({
            "bench": "okta", "scope": "app" if args.app else "org", "users": args.users, "groups": args.groups,
            "memberships": args.memberships, "store": kind if args.cycles else None, "change": changed,
            "load": [load_before, os.getloadavg()], "phases": phases}, indent=1))


if __name__ == "__main__":
    main()
