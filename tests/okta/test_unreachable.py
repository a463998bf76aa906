"""An Okta org that does not answer fails the read fast and says where: every retry is
announced, a request that gets no answer is tried three times, the final error names the
URL (so the host), what happened and the attempts made. Waits are the injected sleeps'
and the timeouts are the settings'; nothing here depends on how long the run takes."""

from __future__ import annotations

import logging
import re

import pytest

from connectors.errors import TransientError
from connectors.okta import ApiToken, OktaConnector
from simulators.faults import Fault, refusing_port
from simulators.okta import OktaSimulator
from reconcile.model import Snapshot
from tests.connectors.offline import UNRESOLVABLE_HOST, resolve_invalid_names_locally, retry_lines
from tests.okta.conftest import MakeConnector, SleepLog, client_context, directory

LOGGER = "connectors.okta"
RETRY = r"\(attempt {n} of 3\), retrying in [0-9.]+ s"


def assert_announced_two_retries(caplog: pytest.LogCaptureFixture, failure: str) -> None:
    lines = retry_lines(caplog.records, LOGGER)
    assert len(lines) == 2
    for n, line in enumerate(lines, start=1):
        assert re.fullmatch(re.escape(failure) + " " + RETRY.format(n=n), line), line


def test_an_org_that_accepts_and_never_answers_times_out_three_times(
    make_connector: MakeConnector, sim: OktaSimulator, sleeps: SleepLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sim.hang()

    with pytest.raises(TransientError) as failure:
        make_connector(max_retries=5, request_timeout_seconds=0.3).read(None)

    what = f"okta okta: GET {sim.base_url}/api/v1/logs timed out after 0.3 s"
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert sim.counts() == {"logs": 3}
    assert len(sleeps.pauses) == 2
    assert_announced_two_retries(caplog, what)


def test_a_refused_connection_is_called_refused(
    make_connector: MakeConnector, sleeps: SleepLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with refusing_port() as port:
        with pytest.raises(TransientError) as failure:
            make_connector(org_url=f"https://127.0.0.1:{port}", max_retries=5).read(None)

    what = f"okta okta: GET https://127.0.0.1:{port}/api/v1/logs connection refused"
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert_announced_two_retries(caplog, what)


def test_a_name_that_does_not_resolve_is_called_a_dns_failure(
    make_connector: MakeConnector, sleeps: SleepLog, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve_invalid_names_locally(monkeypatch)
    caplog.set_level(logging.WARNING, logger=LOGGER)

    with pytest.raises(TransientError) as failure:
        make_connector(org_url=f"https://{UNRESOLVABLE_HOST}", max_retries=5).read(None)

    what = f"okta okta: GET https://{UNRESOLVABLE_HOST}/api/v1/logs DNS lookup of {UNRESOLVABLE_HOST} failed"
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert_announced_two_retries(caplog, what)


def test_no_answer_is_tried_no_more_often_than_max_retries_allows(
    make_connector: MakeConnector, sim: OktaSimulator
) -> None:
    sim.hang()

    with pytest.raises(TransientError, match=r"\(gave up after 2 attempts\)$"):
        make_connector(max_retries=1, request_timeout_seconds=0.3).read(None)

    assert sim.counts() == {"logs": 2}


def test_an_answer_after_one_timeout_completes_the_read(
    make_connector: MakeConnector, sim: OktaSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sim.inject(Fault.HANG, endpoint="users.list")

    snapshot = make_connector(request_timeout_seconds=0.3).read(None)

    assert isinstance(snapshot, Snapshot)
    [line] = retry_lines(caplog.records, LOGGER)
    assert line.startswith(f"okta okta: GET {sim.base_url}/api/v1/users timed out after 0.3 s (attempt 1 of 3)")


def test_a_429_whose_reset_is_past_the_maximum_wait_fails_at_once(sim: OktaSimulator, sleeps: SleepLog) -> None:
    sim.fault_reset_seconds = 900
    sim.inject(Fault.HTTP_429, endpoint="users.list")
    connector = OktaConnector(directory(sim, max_retries=5), ApiToken(sim.api_token),
                              ssl_context=client_context(sim), sleep=sleeps, max_retry_wait_seconds=300)

    with pytest.raises(TransientError) as failure:
        connector.read(None)

    assert "X-Rate-Limit-Reset asks to wait 901 s, more than max_retry_wait_seconds (300 s)" in str(failure.value)
    assert f"{sim.base_url}/api/v1/users: HTTP 429" in str(failure.value)
    assert sleeps.pauses == []
    assert sim.counts()["users.list"] == 1


def test_a_429_whose_reset_is_within_the_maximum_wait_is_waited_for_in_full(
    sim: OktaSimulator, sleeps: SleepLog
) -> None:
    sim.fault_reset_seconds = 200
    sim.inject(Fault.HTTP_429, endpoint="users.list")
    connector = OktaConnector(directory(sim), ApiToken(sim.api_token), ssl_context=client_context(sim),
                              sleep=sleeps, max_retry_wait_seconds=300)

    connector.read(None)

    assert len(sleeps.pauses) == 1 and 201.0 <= sleeps.pauses[0] <= 201.5
