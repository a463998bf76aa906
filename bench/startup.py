"""Start-up: what a `dirsync` command costs before it does any work, and an Okta no-op cycle.

    /work/venv/bin/python bench/startup.py [--runs N]

Each measurement is a whole process, run `--runs` times (median and best printed, with the
peak RSS from `wait4`):

- `python -c pass`: the interpreter's floor;
- `dirsync --help` and `dirsync status` on an empty, upgraded SQLite store with one Okta
  directory configured (goal, issue 11: under 0.5 s; neither may import a vendor SDK);
- `dirsync sync okta` when nothing changed (an Okta no-op cycle against the simulator, 1,000
  users, after a first full cycle), and its number of requests (goal, issue 14: at most 0.5 s
  above start-up, at most 4 requests);
- for reference, `import okta.client` (what an Okta read used to import) against
  `import okta.request_executor` (what it imports now), and `import msal`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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


def serve(control: Any) -> None:
    from simulators.okta import OktaOrg, OktaSimulator

    org = OktaOrg.generate(users=1_000, groups=20, memberships=2_000, seed=1)
    sim = OktaSimulator(org, rate_limits=UNLIMITED).start()
    control.send({"base_url": sim.base_url, "token": sim.api_token, "ca_path": sim.ca_path})
    answer_commands(sim, control)


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code of one process."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss / 1024, child.returncode


def measure(label: str, argv: list[str], env: dict[str, str], runs: int) -> tuple[str, float, float, float, int]:
    results = [run_once(argv, env) for _ in range(runs)]
    times = [r[0] for r in results]
    row = (label, statistics.median(times), min(times), max(r[1] for r in results), results[-1][2])
    print(f"{label}: median {row[1]:.2f} s, best {row[2]:.2f} s, peak RSS {row[3]:.0f} MB, exit {row[4]}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    control, child_end = mp.Pipe()
    server = mp.Process(target=serve, args=(child_end,), daemon=True)
    server.start()
    info: dict[str, Any] = control.recv()

    py = sys.executable
    dirsync = [py, "-c", "from cli.main import main; main()"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        config = scratch / "dirsync.toml"
        config.write_text(f"""[store]
url = "sqlite:///{scratch / 'dirsync.db'}"

[directories.okta]
kind = "okta"
org_url = "{info['base_url']}"
token_env = "OKTA_BENCH_TOKEN"
ca_bundle = "{info['ca_path']}"
""")
        env = {**os.environ, "DIRSYNC_CONFIG": str(config), "OKTA_BENCH_TOKEN": info["token"],
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        subprocess.run([*dirsync, "db", "upgrade"], env=env, check=True, capture_output=True)
        rows.append(measure("python -c pass", [py, "-c", "pass"], env, args.runs))
        rows.append(measure("dirsync --help", [*dirsync, "--help"], env, args.runs))
        rows.append(measure("dirsync status (empty store)", [*dirsync, "status"], env, args.runs))
        subprocess.run([*dirsync, "sync", "okta"], env=env, check=True, capture_output=True)  # the first, full
        control.send("reset")
        control.recv()
        rows.append(measure("dirsync sync okta, nothing changed", [*dirsync, "sync", "okta"], env, args.runs))
        control.send("counts")
        counts: dict[str, int] = control.recv()
        per_cycle = {name: count // args.runs for name, count in sorted(counts.items())}
        print(f"requests per no-op cycle: {per_cycle} (total {sum(per_cycle.values())})", flush=True)
        for module in ("okta.client", "okta.request_executor", "msal"):
            rows.append(measure(f"python -c 'import {module}'", [py, "-c", f"import {module}"], env, args.runs))

    control.send("stop")
    control.recv()
    floor = rows[0][1]
    print()
    print("| process | wall (median) | best | above `python -c pass` | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for label, median, best, peak, _ in rows:
        print(f"| `{label}` | {median:.2f} s | {best:.2f} s | {median - floor:.2f} s | {peak:.0f} MB |")
    print(f"\nOkta no-op cycle: {sum(per_cycle.values())} requests ("
          + ", ".join(f"{k} {v}" for k, v in per_cycle.items()) + ")")


if __name__ == "__main__":
    main()
