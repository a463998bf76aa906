"""A tenant that does not answer fails the read fast and says where: every retry is
announced, a request that gets no answer is tried three times, the final error names the
URL (so the host), what happened and the attempts made. A Retry-After past the maximum wait
fails at once. Waits are recorded, not slept; nothing here depends on how long it takes."""

from __future__ import annotations

import logging
import re

import pytest

from connectors.errors import TransientError
from simulators.faults import Fault, refusing_port
from simulators.graph import GraphSimulator
from tests.connectors.offline import UNRESOLVABLE_HOST, resolve_invalid_names_locally, retry_lines
from tests.graph.conftest import Replica, Sleeps, connect, expected, settings_for

LOGGER = "connectors.graph"


def assert_retries_announced(caplog: pytest.LogCaptureFixture, failure: str) -> None:
    """Each concurrent request of the read announced its retries: attempts 1 and 2 of 3."""
    lines = retry_lines(caplog.records, LOGGER)
    assert lines
    for line in lines:
        assert re.fullmatch(re.escape(failure) + r" \(attempt [12] of 3\), retrying in [0-9.]+ s", line), line


def test_a_graph_endpoint_that_never_answers_times_out_three_times(
    sim: GraphSimulator, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sim.inject(Fault.HANG, endpoint="users.delta", times=1000)

    with pytest.raises(TransientError) as failure:
        connect(sim, sleep=sleeps, max_retries=5, request_timeout_seconds=0.3).read(None)

    what = f"entra entra: GET {sim.graph_url}/v1.0/users/delta timed out after 0.3 s"
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert sim.counts()["users.delta"] == 3
    assert len(sleeps) == 2
    assert_retries_announced(caplog, what)


def test_a_tenant_that_never_answers_fails_at_the_token_request(
    sim: GraphSimulator, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sim.hang()

    with pytest.raises(TransientError) as failure:
        connect(sim, sleep=sleeps, max_retries=5, request_timeout_seconds=0.3).read(None)

    what = f"entra entra: token request to {sim.authority_host}/{sim.tenant.tenant_id}: timed out after 0.3 s"
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert_retries_announced(caplog, what)


def test_a_refused_connection_is_called_refused(sleeps: Sleeps, sim: GraphSimulator,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with refusing_port() as port:
        url = f"https://127.0.0.1:{port}"
        with pytest.raises(TransientError) as failure:
            connect(sim, sleep=sleeps, max_retries=5, authority_host=url, graph_url=url).read(None)

    what = f"entra entra: token request to {url}/{sim.tenant.tenant_id}: connection refused"
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert_retries_announced(caplog, what)


def test_a_name_that_does_not_resolve_is_called_a_dns_failure(
    sim: GraphSimulator, sleeps: Sleeps, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_invalid_names_locally(monkeypatch)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    url = f"https://{UNRESOLVABLE_HOST}"

    with pytest.raises(TransientError) as failure:
        connect(sim, sleep=sleeps, max_retries=5, authority_host=url, graph_url=url).read(None)

    what = (f"entra entra: token request to {url}/{sim.tenant.tenant_id}: "
            f"DNS lookup of {UNRESOLVABLE_HOST} failed")
    assert str(failure.value) == f"{what} (gave up after 3 attempts)"
    assert_retries_announced(caplog, what)


def test_retry_after_past_the_maximum_wait_fails_at_once(sim: GraphSimulator, sleeps: Sleeps) -> None:
    from connectors.graph import GraphConnector
    from connectors.graph_auth import Credential

    sim.retry_after_seconds = 301
    sim.inject(Fault.HTTP_429, endpoint="users.delta", times=1000)
    connector = GraphConnector(settings_for(sim), credential=Credential(secret=sim.tenant.client_secret),
                               ca_bundle=sim.ca_path, sleep=sleeps, max_retry_wait_seconds=300)

    with pytest.raises(TransientError) as failure:
        connector.read(None)

    assert str(failure.value) == (
        f"entra entra: GET {sim.graph_url}/v1.0/users/delta: HTTP 429 TooManyRequests: rate limited,"
        " Retry-After asks to wait 301 s, more than max_retry_wait_seconds (300 s); a later cycle retries")
    assert sleeps == []
    assert sim.counts()["users.delta"] == 1


def test_retry_after_within_the_maximum_wait_is_waited_for_in_full(sim: GraphSimulator, sleeps: Sleeps) -> None:
    sim.retry_after_seconds = 300
    sim.inject(Fault.HTTP_429, endpoint="users.delta")

    snapshot = connect(sim, sleep=sleeps).read(None)

    assert sleeps == [300.0]
    assert Replica().apply(snapshot).as_view() == expected(sim.tenant)
