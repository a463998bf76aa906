"""Two directories and an admin writing at once, round after round (DESIGN §2a, issue 9).

Each round starts, at random (seeded) moments, a cycle of each directory and a few local
admin actions, every one a `dirsync` process of its own, while an observer process polls
the store. Between rounds the directory files change at random. Whatever the interleaving:
- R4: once `Administrators` has an active member it always has one — in every state the
  observer saw, after every round, and at every commit the log shows;
- no takeover: a row a directory manages is only re-bound by that directory, or after
  an unlink; no local action writes a managed row (R5);
- no lost update: every applied change starts from the value the previous one left;
- every run ends succeeded, partial, skipped, halted or aborted (never `running`), with
  exactly one outcome event per operation and rejection of its plan;
- every command exits with a documented code and one line, never a traceback.

`CONCURRENCY_ROUNDS` (default 30) and `CONCURRENCY_SEED` (default: a fixed
seed) tune a run; the numbers seen are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

from store import open_store
from tests.concurrency import actors
from tests.concurrency.invariants import (
    FINAL_STATUSES,
    conflict_reasons,
    read_log,
    read_snapshot,
    replay_log,
    run_accounting,
)
from tests.concurrency.world import DIRECTORIES, LOCALS, ROOT, World, config_text

ROUNDS = int(os.environ.get("CONCURRENCY_ROUNDS", "30"))
SEED = int(os.environ.get("CONCURRENCY_SEED", "20261201"))
MAX_DELAY = 0.4  # seconds: how far apart a round's writers start
EXIT_CODES = {"sync": {0, 1}, "admin": {0, 1, 4}}
TIMEOUT = 120


def test_cycles_of_two_directories_and_admin_actions_at_once(store_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    config = tmp_path / "dirsync.toml"
    config.write_text(config_text(store_url))
    store = open_store(store_url, check_schema=False)
    store.upgrade()
    world = World.start(tmp_path, rng)
    reports = tmp_path / "reports"
    reports.mkdir()

    def dirsync(args: list[str], delay: float, name: str) -> tuple[Any, Path]:
        report = reports / f"{name}.json"
        return actors.start(actors.run_cli, ["--config", str(config), *args], delay, str(report)), report

    codes: Counter[str] = Counter()
    setup = [["admin", "add-user", e] for e in (ROOT, *LOCALS)]
    setup += [["admin", "add-member", "Administrators", e] for e in (ROOT, *LOCALS)]
    for n, args in enumerate(setup):
        setup = _finish([dirsync(args, 0.0, f"setup-{n}")])
        assert setup[0]["code"] == 0, setup

    stop = actors.FORKSERVER.Event()
    observer = actors.start(actors.observe, store_url, stop, str(tmp_path / "observer.json"), SEED)
    try:
        for round_no in range(ROUNDS):
            newcomers = world.newcomers(round_no)
            world.write()
            writers = [dirsync(["sync", name], rng.uniform(0, MAX_DELAY), f"r{round_no}-sync-{name}-{k}")
                       for name in DIRECTORIES for k in range(rng.randint(1, 2))]
            writers += [dirsync(args, rng.uniform(0, MAX_DELAY), f"r{round_no}-admin-{k}")
                        for k, args in enumerate(world.admin_commands(newcomers))]
            for result in _finish(writers):
                kind = result["args"][2]
                codes[f"{kind} exit {result['code']}"] += 1
                assert result["code"] in EXIT_CODES[kind], result
                assert "Traceback" not in result["err"] and "internal error" not in result["err"], result
            _check_round(store, round_no)
            world.mutate()
    finally:
        stop.set()
        observer.join(TIMEOUT)
    seen = json.loads((tmp_path / "observer.json").read_text())
    assert seen["violations"] == [], seen["violations"]
    assert seen["admin_had_member"]

    listed = _finish([dirsync(["runs", "--json", "--limit", "100000"], 0.0, "runs")])[0]
    events, runs = read_log(store)
    assert listed["code"] == 0, listed
    assert sorted((r["id"], r["status"]) for r in json.loads(listed["out"])) == sorted(
        (i, r["status"]) for i, r in runs.items()
    )
    statuses = Counter(r["status"] for r in runs.values())
    operations = sum(1 for e in events if e["action"] != "reject")
    print(f"\n{store_url.split(':')[0]}: {ROUNDS} rounds, seed {SEED}, {len(runs)} runs {dict(statuses)},"
          f" {operations} operation events, {Counter(e['outcome'] for e in events)},"
          f" conflicts {dict(conflict_reasons(events))},"
          f" failed {dict(Counter((e['action'], str(e['reason'])[:40]) for e in events if e['outcome'] == 'failed'))},"
          f" observer snapshots {seen['snapshots']},"
          f" commands {dict(sorted(codes.items()))}")
    store.dispose()


def _finish(started: list[tuple[Any, Path]]) -> list[dict[str, Any]]:
    results = []
    for process, report in started:
        process.join(TIMEOUT)
        if process.exitcode is None:
            process.kill()
            raise AssertionError(f"a dirsync process did not end within {TIMEOUT} s: {report.name}")
        assert process.exitcode == 0, f"{report.name}: the process died with {process.exitcode}"
        results.append(json.loads(report.read_text()))
    return results


def _check_round(store: Any, round_no: int) -> None:
    """The checks after a round."""
    now = read_snapshot(store)
    assert now.admin_active, f"round {round_no}: Administrators has no active member"
    events, runs = read_log(store)
    problems = replay_log(events, runs) + run_accounting(events, runs)
    assert problems == [], f"round {round_no}: " + "\n".join(problems)
    assert {r["status"] for r in runs.values()} <= FINAL_STATUSES
