"""Benchmark: console pages under `dirsync serve` with 100,000 users and 1,000,000 events.

    python bench/console_bench.py [--url URL] [--users 100000] [--groups 2000]
                                  [--events 1000000] [--requests 30] [--workers 1]

1. Fills an empty store in bulk (`bench/console_seed.py`: four directories, their users,
   groups and memberships, and the events of months of cycles) and adds a console admin.
2. Starts `dirsync serve` as its own process, signs in through the sign-in form, and
   requests each page `--requests` times one after the other (after one warm-up request):
   the directories list, a directory page, the provisioning log unfiltered and filtered by
   user, group (and the biggest group), outcome and a small directory, a deep page reached
   through an Older cursor, a run page, and the explain view of a user and of groups. Prints p50 / p99 per page, and
   the sign-in page (no store query) as the floor of the same run.

Default store: a fresh SQLite file. For PostgreSQL pass `--url postgresql+psycopg://...`
(an empty database; the script runs ANALYZE after the bulk load, as autovacuum would).
Goal (issue 13): every page under 200 ms. Results: bench/results/console.md.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from console_seed import START, seed  # noqa: E402

from service.console_auth import set_admin  # noqa: E402
from store import open_store  # noqa: E402

ADMIN, PASSWORD = "bench-admin@example.com", "bench password, long enough"
GOAL_MS = 200.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(folder: Path, url: str, port: int) -> Path:
    (folder / "hr.json").write_text('{"users": [], "groups": []}')
    cfg = folder / "dirsync.toml"
    cfg.write_text(
        f'[store]\nurl = "{url}"\n\n[web]\npublic_url = "http://127.0.0.1:{port}"\n\n'
        '[directories.okta]\nkind = "okta"\norg_url = "https://bench.okta.example"\ntoken_env = "BENCH_OKTA_TOKEN"\n\n'
        '[directories.entra]\nkind = "entra"\ntenant_id = "bench"\nclient_id = "bench"\n'
        'client_secret_env = "BENCH_ENTRA_SECRET"\n\n'
        f'[directories.hr]\nkind = "file"\npath = "{folder / "hr.json"}"\n\n'
        '[directories.app]\nkind = "scim"\n\n[worker]\nlog_level = "WARNING"\n')
    return cfg


def _sign_in(http: httpx.Client) -> None:
    form = http.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    done = http.post("/console/login", data={"email": ADMIN, "password": PASSWORD, "next": "/console",
                                              "csrf_token": html.unescape(token.group(1))})
    assert done.status_code == 303 and "dirsync_console" in http.cookies, (done.status_code, done.text[:300])


def _older_cursor(http: httpx.Client, path: str) -> str:
    """The `older` cursor of the page at `path` (its Older link)."""
    found = re.search(r'<a href="([^"]*)"[^>]*>Older</a>', http.get(path).text)
    assert found, f"no Older link on {path}"
    return parse_qs(urlsplit(html.unescape(found.group(1))).query)["older"][0]


def _time(http: httpx.Client, path: str, n: int) -> tuple[list[float], int, int]:
    http.get(path)  # warm-up: first use of this query's statements and pages
    samples: list[float] = []
    status = size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        response = http.get(path)
        samples.append(time.perf_counter() - t0)
        status, size = response.status_code, len(response.content)
    return samples, status, size


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    url = args.url or f"sqlite:///{folder / 'dirsync.db'}"
    port = _free_port()
    cfg = _config(folder, url, port)
    store = open_store(url, check_schema=False)
    store.upgrade()
    started = time.perf_counter()
    facts = seed(store, n_users=args.users, n_groups=args.groups, n_events=args.events)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    set_admin(store, ADMIN, PASSWORD)
    print(f"seeded {args.users} users, {args.groups} groups, {facts['memberships']} memberships,"
          f" {facts['events']} events in {time.perf_counter() - started:.1f} s ({store.engine.dialect.name})")
    store.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")}
    env |= {"DIRSYNC_CONFIG": str(cfg), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port),
                               "--workers", str(args.workers)], env=env, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("dirsync serve exited")
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            _sign_in(http)
            deep = _older_cursor(http, "/console/log?" + urlencode({"until": (START.replace(day=2)).strftime("%Y-%m-%d")}))
            pages = {
                "sign-in page (floor: no store query)": "/console/login",
                "directories": "/console",
                "a directory (okta)": "/console/directories/okta",
                "a run (okta's first full cycle, its first 500 events)":
                    f"/console/directories/okta/runs/{facts['first_run']}",
                "log, unfiltered": "/console/log",
                "log, by user": "/console/log?" + urlencode({"user": facts["user"]}),
                "log, by group": "/console/log?" + urlencode({"group": facts["group"]}),
                f"log, by the {facts['big_group_members']:,}-member group":
                    "/console/log?" + urlencode({"group": facts["big_group"]}),
                "log, by outcome (failed)": "/console/log?outcome=failed",
                "log, by a small directory": "/console/log?" + urlencode({"directory": facts["small_directory"]}),
                "log, a deep page (Older cursor)": "/console/log?" + urlencode({"older": deep}),
                "explain, a user": "/console/explain?" + urlencode({"directory": "okta", "user": facts["user"]}),
                "explain, a group": "/console/explain?" + urlencode({"directory": "okta", "group": facts["group"]}),
                f"explain, the {facts['big_group_members']:,}-member group":
                    "/console/explain?" + urlencode({"directory": "okta", "group": facts["big_group"]}),
            }
            print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
            print(f"| page | p50 | p99 | status | bytes |  ({args.requests} requests each)")
            print("|---|---:|---:|---:|---:|")
            for name, path in pages.items():
                samples, status, size = _time(http, path, args.requests)
                flag = "" if status != 200 or _p(samples, 0.5) < GOAL_MS else "  (over the goal)"
                print(f"| {name} | {statistics.median(samples) * 1000:.1f} ms | {_p(samples, 0.99):.1f} ms |"
                      f" {status} | {size} |{flag}", flush=True)
            print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)  # half a gigabyte of SQLite store


if __name__ == "__main__":
    main()
