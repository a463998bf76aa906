"""One run of the fault matrix and the tally of all of them.

A run copies the baseline store, injects one fault at the k-th request of the cycle,
runs the cycle, and judges what it left (S1): either the cycle succeeded and the store is
exactly what a clean cycle produces, or it failed and the store, the watermark and the
last full sync are exactly as before. Either way the next clean cycle must then bring the
store to the correct state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from simulators.faults import Fault
from tests.faults.scenarios import (
    CLEAN_TIMEOUT_SECONDS,
    SHORT_TIMEOUT_SECONDS,
    Export,
    FaultCase,
    Outcome,
    Scenario,
)

SUCCEEDED = "succeeded with the correct store"
FAILED = "failed with the store unchanged"


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries the connector may make: one (a single fault is usually absorbed)
    or none (a single fault usually fails the read, so the fail-closed path runs)."""

    name: str
    max_retries: int


RETRIED = RetryPolicy("retried", 1)
UNRETRIED = RetryPolicy("unretried", 0)
POLICIES = (RETRIED, UNRETRIED)
MODES = ("full", "incremental")


@dataclass
class Expectation:
    """What a clean cycle of each mode does from the baseline: requests and resulting store."""

    requests: dict[str, int]
    exports: dict[str, Export]


@dataclass
class Tally:
    """Every run of the matrix, by connector, and how each ended."""

    runs: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (connector, fault, verdict)
    shape: dict[str, tuple[int, int, int, dict[str, int]]] = field(default_factory=dict)

    def summary(self) -> list[str]:
        lines = []
        total = passed = 0
        for connector, (modes, faults, policies, requests) in sorted(self.shape.items()):
            done: Counter[str] = Counter()
            for (c, _, verdict), n in self.runs.items():
                if c == connector:
                    done[verdict] += n
            runs = sum(done.values())
            ok = done.get(SUCCEEDED, 0) + done.get(FAILED, 0)
            total += runs
            passed += ok
            per_mode = " + ".join(f"{requests[m]} ({m})" for m in MODES)
            lines.append(
                f"{connector}: {faults} faults x {policies} retry policies x [{per_mode}] request"
                f" indexes = {runs} runs, {ok} passed ({done.get(SUCCEEDED, 0)} {SUCCEEDED},"
                f" {done.get(FAILED, 0)} {FAILED})"
            )
            for fault in sorted({f for c, f, _ in self.runs if c == connector}):
                counts = {v: n for (c, f, v), n in self.runs.items() if c == connector and f == fault}
                lines.append(f"  {fault}: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
        kinds = " | ".join(str(shape[1]) for _, shape in sorted(self.shape.items()))
        lines.append(f"fault matrix: {len(self.shape)} connectors x {len(MODES)} modes x ({kinds}) faults"
                     f" x {len(POLICIES)} retry policies x k requests = {total} runs, {passed} passed")
        return lines


TALLY = Tally()


def run_with_fault(scenario: Scenario, expectation: Expectation, mode: str, case: FaultCase,
                   policy: RetryPolicy, k: int) -> str:
    """One run; returns its verdict or raises AssertionError saying what went wrong."""
    full = mode == "full"
    timeout = SHORT_TIMEOUT_SECONDS if case.fault is Fault.TIMEOUT else CLEAN_TIMEOUT_SECONDS
    with scenario.fresh_store() as (store, _):
        before = scenario.observe(store)
        case.inject(scenario.sim, at=k)
        try:
            after = scenario.cycle(store, full=full, timeout=timeout, max_retries=policy.max_retries)
        finally:
            scenario.sim.clear_faults()
        verdict = _judge(after, before, expectation)
        # the cycle the schedule runs next: incremental, from whatever watermark is stored
        converged = scenario.cycle(store, full=False)
        assert converged.result is not None and converged.result.status == "succeeded", \
            f"the next clean cycle: {converged.result}"
        assert converged.export == expectation.exports[mode], "the next clean cycle did not converge"
    return verdict


def _judge(after: Outcome, before: Outcome, expectation: Expectation) -> str:
    assert after.result is not None
    status = after.result.status
    if status == "succeeded":
        # an incremental read that had to resync (expired cursor or delta link) runs full
        assert after.export == expectation.exports[after.result.mode], \
            f"succeeded ({after.result.mode}) with a store that differs from a clean cycle's"
        assert after.result.counts.get("outcome:failed", 0) == 0, after.result.error
        return SUCCEEDED
    assert status == "failed", f"ended {status!r}: {after.result.error}"
    assert after.export == before.export, f"failed ({after.result.error}) but changed the store"
    assert after.watermark == before.watermark, "failed but moved the watermark"
    assert after.last_full_sync_at == before.last_full_sync_at, "failed but recorded a full sync"
    return FAILED
