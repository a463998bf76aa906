"""Benchmark: a mass deactivation pushed over SCIM and held by S2 (one open staged plan).

    python bench/scim_held.py [--url URL] [--users 20000] [--held 5000] [--limit 100]

Seeds `--users` users of a scim directory, then deactivates `--limit` + `--held` of them
one PATCH at a time through the service layer (no HTTP: the store's cost alone). The
first `--limit` are applied (the floor: an ordinary deactivation request); the rest are
held in the directory's open plan. Prints the median and p99 of a request while the plan
is small and when it holds thousands (a held request must not cost more as the plan
grows), a retry of a held request, `dirsync staged`'s read of the plan, and the approval.

Default store: a fresh SQLite file. For PostgreSQL pass `--url postgresql+psycopg://...`
(an empty database).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from reconcile.apply import apply  # noqa: E402
from reconcile.model import Action, Operation, Plan, Ref  # noqa: E402
from service import scim  # noqa: E402
from service.scim_tokens import issue_token  # noqa: E402
from service.staging import approve, open_staged  # noqa: E402
from store import open_store  # noqa: E402

PATCH = scim.parse_patch({"Operations": [{"op": "replace", "value": {"active": False}}]})


def seed(store: object, users: int) -> None:
    ops = tuple(Operation(Action.CREATE_USER, f"u{n}@example.com", user=Ref(key=f"s{n}"),
                          values=(("active", True), ("email", f"u{n}@example.com"), ("external_id", f"s{n}"),
                                  ("managed_by", "okta"), ("scim_id", f"s{n}")))
                for n in range(users))
    apply(store, Plan("okta", ops), run_id=None, directory="okta")  # type: ignore[arg-type]


def deactivate(settings: config.Settings, store: object, n: int) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        scim.patch_user(settings, store, "okta", f"s{n}", PATCH, request=f"PATCH /Users/s{n}")  # type: ignore[arg-type]
        status = 200
    except scim.Problem as problem:
        status = problem.status
    return (time.perf_counter() - start) * 1000, status


def summary(name: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{name:<44} n={len(ms):>5}  median {statistics.median(ms):7.2f} ms  p99 {p99:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--held", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scim-held-") as scratch:  # the default store goes with it
        run(args, args.url or f"sqlite:///{scratch}/held.db")


def run(args: argparse.Namespace, url: str) -> None:
    settings = config.parse({"store": {"url": url}, "directories": {"okta": {"kind": "scim"}},
                             "safety": {"max_deactivations": args.limit, "max_deactivation_ratio": 1.0}}, {})
    store = open_store(url, check_schema=False)
    store.upgrade()
    issue_token(settings, store, "okta")
    seed(store, args.users)

    applied = [deactivate(settings, store, n) for n in range(args.limit)]
    held = [deactivate(settings, store, n) for n in range(args.limit, args.limit + args.held)]
    retries = [deactivate(settings, store, n) for n in range(args.limit + args.held - 100, args.limit + args.held)]
    assert {s for _, s in applied} == {200} and {s for _, s in held + retries} == {503}

    start = time.perf_counter()
    [plan] = open_staged(store, "okta")
    listing = (time.perf_counter() - start) * 1000
    assert len(plan.deactivations) == args.held
    start = time.perf_counter()
    decision = approve(settings, plan.run_id, by="bench", store=store)
    approval = time.perf_counter() - start
    assert decision.applied is not None and decision.applied.applied == args.held

    print(f"store {url.split(':')[0]}, {args.users} users, limit {args.limit}, {args.held} held")
    print(summary("applied deactivation (floor)", [ms for ms, _ in applied]))
    print(summary("held, plan holding the first 100", [ms for ms, _ in held[:100]]))
    print(summary(f"held, plan holding {args.held - 100}..{args.held}", [ms for ms, _ in held[-100:]]))
    print(summary("retry of a held request", [ms for ms, _ in retries]))
    print(f"{'staged listing of the plan':<44} {listing:9.1f} ms")
    print(f"{'approve (applies all held)':<44} {approval:9.2f} s")
    store.dispose()


if __name__ == "__main__":
    main()
