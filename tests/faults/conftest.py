"""The two simulated directories of the fault matrix (built once per module), and the
matrix summary at the end of the test run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.matrix import MODES, TALLY, Expectation
from tests.faults.scenarios import Scenario, graph_scenario, okta_scenario

BUILDERS = {"okta": okta_scenario, "entra": graph_scenario}


@pytest.fixture(scope="module")
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The running simulator and baseline store of one connector (the test's parameter)."""
    built = BUILDERS[request.param](tmp_path_factory.mktemp(f"faults-{request.param}"))
    try:
        built.prepare()
        yield built
    finally:
        built.sim.stop()


@pytest.fixture(scope="module")
def expectation(scenario: Scenario) -> Expectation:
    """Requests and resulting store of a clean cycle of each mode from the baseline."""
    requests, exports = {}, {}
    for mode in MODES:
        with scenario.fresh_store() as (store, _):
            outcome, requests[mode] = scenario.counted_cycle(store, full=mode == "full")
        assert outcome.result is not None and outcome.result.status == "succeeded", outcome.result
        assert outcome.result.mode == mode
        exports[mode] = outcome.export
    return Expectation(requests, exports)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.runs:
        terminalreporter.write_sep("-", "fault matrix")
        for line in TALLY.summary():
            terminalreporter.write_line(line)
