"""`dirsync sync-user` against the Okta simulator: 100,000 users, 2,000 groups, 200,000 memberships.

    /work/venv/bin/python bench/okta_sync_user.py [--users N --groups M --memberships K] [--runs R]

The simulator runs in its own process with rate limits lifted, the org scope and an app
(2,000 users assigned directly, 200 groups assigned) side by side. Each measurement is a
whole `dirsync sync-user` process (start-up, the Okta read, planning and applying on a
SQLite store), so the wall time is what an admin waits. For each directory (org scope,
app scope) it runs, by email:

- a user's first provisioning (creates the user, their groups and those groups' members
  that are known locally: none yet, on a fresh store);
- the same user again (unchanged);
- a user that does not exist (exit 4, "not found").

and reports the median wall time over `--runs` users and the requests per endpoint. The
goal (issue 11) is under 2 s; before `read_user`, sync-user read the whole org (about 2,500
requests). `python -c pass` and `dirsync --help` are printed as the floor of a process.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from okta_bench import UNLIMITED, answer_commands  # noqa: E402  (bench/ is the script's directory)


def serve(args: argparse.Namespace, control: Any) -> None:
    from simulators.okta import OktaOrg, OktaSimulator

    org = OktaOrg.generate(users=args.users, groups=args.groups, memberships=args.memberships, seed=args.seed,
                           app_users=2_000, app_groups=200)
    sim = OktaSimulator(org, rate_limits=UNLIMITED).start()
    for uid in org.user_ids:  # serialise once, as a long-running org would have
        org.user_bytes(uid)
    assert org.app_id is not None
    app_ids, _ = org.app_user_ids(org.app_id)
    rng = random.Random(args.seed)
    emails = [org.users[u]["profile"]["email"] for u in org.user_ids]
    in_app = [org.users[u]["profile"]["email"] for u in sorted(app_ids)]
    control.send({"base_url": sim.base_url, "token": sim.api_token, "ca_path": sim.ca_path, "app_id": org.app_id,
                  "org_emails": rng.sample(emails, args.runs), "app_emails": rng.sample(in_app, args.runs)})
    answer_commands(sim, control)


def write_config(scratch: Path, info: dict[str, Any]) -> Path:
    path = scratch / "dirsync.toml"
    path.write_text(f"""[store]
url = "sqlite:///{scratch / 'dirsync.db'}"

[directories.org]
kind = "okta"
org_url = "{info['base_url']}"
token_env = "OKTA_BENCH_TOKEN"
ca_bundle = "{info['ca_path']}"

[directories.app]
kind = "okta"
org_url = "{info['base_url']}"
token_env = "OKTA_BENCH_TOKEN"
ca_bundle = "{info['ca_path']}"
app_id = "{info['app_id']}"
""")
    return path


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, exit code and last line printed of one process."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return elapsed, done.returncode, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5, help="users provisioned per directory")
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    control, child_end = mp.Pipe()
    server = mp.Process(target=serve, args=(args, child_end), daemon=True)
    server.start()
    info: dict[str, Any] = control.recv()

    def counts() -> dict[str, int]:
        control.send("counts")
        result: dict[str, int] = control.recv()
        return result

    def reset() -> None:
        control.send("reset")
        control.recv()

    rows: list[tuple[str, float, str, str]] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        config = write_config(scratch, info)
        env = {**os.environ, "DIRSYNC_CONFIG": str(config), "OKTA_BENCH_TOKEN": info["token"],
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        dirsync = [sys.executable, "-c", "from cli.main import main; main()"]
        floor = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(3))
        helped = statistics.median(timed([*dirsync, "--help"], env)[0] for _ in range(3))
        print(f"python -c pass {floor:.2f} s; dirsync --help {helped:.2f} s", flush=True)
        subprocess.run([*dirsync, "db", "upgrade"], env=env, check=True, capture_output=True)
        for directory, emails in (("org", info["org_emails"]), ("app", info["app_emails"])):
            for label, keys in (("first provisioning", emails), ("again (unchanged)", emails),
                                ("unknown user", [f"nobody{i}@example.com" for i in range(len(emails))])):
                times, per_run, last, codes = [], [], "", set()
                for key in keys:
                    reset()
                    seconds, code, last = timed([*dirsync, "sync-user", directory, key], env)
                    times.append(seconds)
                    codes.add(code)
                    per_run.append(counts())
                requests = per_run[len(per_run) // 2]
                shown = ", ".join(f"{k} {v}" for k, v in sorted(requests.items()))
                row = (f"{directory}: {label}", statistics.median(times),
                       f"{shown} (total {sum(requests.values())})", f"exit {sorted(codes)}: {last[:70]}")
                rows.append(row)
                print(f"{row[0]}: median {row[1]:.2f} s over {len(times)} (max {max(times):.2f}), {row[2]}, {row[3]}",
                      flush=True)

    control.send("stop")
    control.recv()
    print()
    print(f"`python -c pass` {floor:.2f} s, `dirsync --help` {helped:.2f} s (process floor)")
    print()
    print("| sync-user | wall (median, whole process) | requests | outcome |")
    print("|---|---:|---|---|")
    for label, seconds, requests, outcome in rows:
        print(f"| {label} | {seconds:.2f} s | {requests} | {outcome} |")


if __name__ == "__main__":
    main()
