"""S1 under every fault at every request: a cycle either succeeds with the correct store or
fails leaving the store, the watermark and the last full sync untouched; the next clean
cycle then converges. Each test covers every request index k of one cycle (a clean cycle's
request count, measured first) for one connector, mode, fault and retry policy."""

from __future__ import annotations

import pytest

from tests.faults.matrix import (
    MODES,
    POLICIES,
    TALLY,
    Expectation,
    RetryPolicy,
    run_with_fault,
)
from tests.faults.scenarios import FAULTS, FaultCase, Scenario

CASES = [pytest.param(connector, case, id=f"{connector}-{case.name}")
         for connector, cases in sorted(FAULTS.items()) for case in cases]


@pytest.mark.parametrize("scenario", sorted(FAULTS), indirect=True)
def test_a_clean_cycle_of_either_mode_reaches_the_same_store(expectation: Expectation) -> None:
    assert expectation.exports["full"] == expectation.exports["incremental"]
    assert expectation.requests["full"] > 1 and expectation.requests["incremental"] > 1


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("scenario", "case"), CASES, indirect=["scenario"])
def test_a_fault_at_any_request_fails_closed_or_is_absorbed(
    scenario: Scenario, expectation: Expectation, case: FaultCase, mode: str, policy: RetryPolicy
) -> None:
    requests = expectation.requests[mode]
    TALLY.shape[scenario.name] = (len(MODES), len(scenario.faults), len(POLICIES), expectation.requests)
    problems = []

    for k in range(1, requests + 1):
        try:
            verdict = run_with_fault(scenario, expectation, mode, case, policy, k)
        except AssertionError as failure:
            verdict = "violated S1"
            problems.append(f"{scenario.name} {mode} {case.name} {policy.name} at request {k}: {failure}")
        TALLY.runs[scenario.name, case.name, verdict] += 1

    assert not problems, "\n".join(problems)
