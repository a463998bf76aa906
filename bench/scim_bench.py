"""Benchmark: the SCIM endpoint under `dirsync serve`, with a big directory already stored.

    python bench/scim_bench.py [--url URL] [--users 100000] [--create 2000] [--clients 8]
                               [--group-members 50000] [--patches 100] [--workers 1]

1. Seeds `--users` users of a scim directory (and one group holding the first
   `--group-members` of them) through `reconcile.apply`.
2. Starts `dirsync serve` and plays Okta's create flow (GET ?filter=userName eq, then
   POST) for `--create` new users from `--clients` concurrent clients: users/s and the
   latency of each request (p50 / p99).
3. One-member PATCHes (add, then remove) on the big group: p50 / p99.
4. A no-op PUT of an unchanged user: how many events it wrote (none expected).

Default store: a fresh SQLite file. For PostgreSQL pass `--url postgresql+psycopg://...`
(an empty database). Results are recorded in bench/results/scim.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from reconcile.apply import apply  # noqa: E402
from reconcile.model import Action, Operation, Plan, Ref  # noqa: E402
from service.scim_tokens import issue_token  # noqa: E402
from store import open_store  # noqa: E402
from store.models import sync_events  # noqa: E402

DIRECTORY = "okta"


def _seed(store: object, n_users: int, n_members: int) -> tuple[list[str], str]:
    ids = [uuid.uuid4().hex for _ in range(n_users)]
    ops = [Operation(Action.CREATE_USER, f"seed{i}@example.com", user=Ref(key=sid), values=(
        ("active", True), ("display_name", f"Seed {i}"), ("email", f"seed{i}@example.com"), ("external_id", sid),
        ("family_name", "Seed"), ("given_name", "User"), ("managed_by", DIRECTORY), ("scim_id", sid)))
        for i, sid in enumerate(ids)]
    group_id = uuid.uuid4().hex
    ops.append(Operation(Action.CREATE_GROUP, "Big", group=Ref(key=group_id), values=(
        ("external_id", group_id), ("managed_by", DIRECTORY), ("name", "Big"), ("reserved", False),
        ("scim_id", group_id))))
    ops += [Operation(Action.ADD_MEMBER, "Big", group=Ref(key=group_id), user=Ref(key=sid),
                      values=(("member", f"seed{i}@example.com"),)) for i, sid in enumerate(ids[:n_members])]
    apply(store, Plan(DIRECTORY, tuple(ops)), run_id=None, directory=DIRECTORY)  # type: ignore[arg-type]
    return ids, group_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its live descendants, from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--create", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--group-members", type=int, default=50_000)
    parser.add_argument("--patches", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="scim-bench-"))
    url = args.url or f"sqlite:///{folder / 'dirsync.db'}"
    port = _free_port()
    cfg = folder / "dirsync.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\n\n[web]\npublic_url = "http://127.0.0.1:{port}"\n'
                   'scim_rate_per_second = 100000\nscim_burst = 100000\n\n'
                   f'[directories.{DIRECTORY}]\nkind = "scim"\n\n[worker]\nlog_level = "WARNING"\n')
    settings = config.load(cfg)
    store = open_store(url, check_schema=False)
    store.upgrade()
    token = issue_token(settings, store, DIRECTORY).token
    started = time.perf_counter()
    ids, group_id = _seed(store, args.users, args.group_members)
    print(f"seeded {args.users} users and a {args.group_members}-member group in"
          f" {time.perf_counter() - started:.1f} s ({store.engine.dialect.name})")

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")}
    env |= {"DIRSYNC_CONFIG": str(cfg), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port),
                               "--workers", str(args.workers)], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/scim/v2/{DIRECTORY}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        cpu = _cpu_seconds(server.pid)
        _create_flow(base, headers, args.create, args.clients)
        used = _cpu_seconds(server.pid) - cpu
        print(f"  server CPU: {used:.1f} s = {used / args.create * 1000:.1f} ms per created user (GET + POST);"
              f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        _group_patches(base, headers, group_id, ids[args.group_members:], args.patches)
        _noop_put(base, headers, ids[0], store)
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.dispose()


def _create_flow(base: str, headers: dict[str, str], total: int, clients: int) -> None:
    gets: list[float] = []
    posts: list[float] = []
    flows: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            for n in range(offset, total, clients):
                email = f"new{n}-{uuid.uuid4().hex[:6]}@example.com"
                t0 = time.perf_counter()
                found = http.get("/Users", params={"filter": f'userName eq "{email}"', "startIndex": 1, "count": 100})
                t1 = time.perf_counter()
                created = http.post("/Users", content=json.dumps({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
                    "name": {"givenName": "New", "familyName": f"User{n}"},
                    "emails": [{"value": email, "type": "work", "primary": True}], "active": True}))
                t2 = time.perf_counter()
                with lock:
                    gets.append(t1 - t0)
                    posts.append(t2 - t1)
                    flows.append(t2 - t0)
                    if found.status_code != 200 or created.status_code != 201:
                        errors.append(f"{found.status_code}/{created.status_code} {created.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    print(f"create flow: {total} users from {clients} clients in {elapsed:.1f} s = {total / elapsed:.0f} users/s;"
          f" errors {len(errors)}")
    print(f"  GET filter {_percentiles(gets)}; POST {_percentiles(posts)}; flow {_percentiles(flows)}")
    for line in errors[:3]:
        print(f"  error: {line}")


def _group_patches(base: str, headers: dict[str, str], group_id: str, outsiders: list[str], n: int) -> None:
    samples: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for i in range(n):
            member = outsiders[i // 2]
            op = {"op": "add", "path": "members", "value": [{"value": member}]} if i % 2 == 0 else \
                {"op": "remove", "path": f'members[value eq "{member}"]'}
            t0 = time.perf_counter()
            response = http.patch(f"/Groups/{group_id}", content=json.dumps(
                {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}))
            samples.append(time.perf_counter() - t0)
            assert response.status_code == 204, response.text
    print(f"one-member PATCH on the big group ({n}, add/remove): {_percentiles(samples)}")


def _noop_put(base: str, headers: dict[str, str], scim_id: str, store: object) -> None:
    from sqlalchemy import func, select

    def events() -> int:
        with store.session() as session:  # type: ignore[attr-defined]
            return int(session.execute(select(func.count()).select_from(sync_events)).scalar() or 0)

    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        user = http.get(f"/Users/{scim_id}").json()
        before = events()
        response = http.put(f"/Users/{scim_id}", content=json.dumps(user))
        after = events()
    print(f"no-op PUT: {response.status_code}, events written: {after - before}")


if __name__ == "__main__":
    main()
