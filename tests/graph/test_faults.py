"""Faults at any point of a read: retried to the same result, or a ConnectorError; never a
partial result. Retry-After is honoured; retries are bounded; 401/403 are AuthErrors."""

from __future__ import annotations

import pytest

from connectors.errors import AuthError, ConnectorError, PermanentError, TransientError
from simulators.faults import Fault
from simulators.graph import GraphSimulator
from tests.graph.conftest import Replica, Sleeps, connect, expected

GRAPH_ENDPOINTS = ["users.delta", "groups.delta", "sp.appRoleAssignedTo"]
RETRIED = [Fault.HTTP_429, Fault.HTTP_429_BARE, Fault.HTTP_500, Fault.HTTP_503,
           Fault.TIMEOUT, Fault.RESET, Fault.MALFORMED_JSON, Fault.TRUNCATED]


def _inject(sim: GraphSimulator, fault: Fault, **where: object) -> None:
    seconds = 1.0 if fault is Fault.TIMEOUT else None
    sim.inject(fault, seconds=seconds, **where)  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", RETRIED, ids=lambda f: f.value)
@pytest.mark.parametrize("endpoint", GRAPH_ENDPOINTS)
def test_fault_on_a_graph_page_is_retried_to_the_same_full_read(
    sim: GraphSimulator, sleeps: Sleeps, endpoint: str, fault: Fault
) -> None:
    _inject(sim, fault, endpoint=endpoint, at=2 if endpoint != "sp.appRoleAssignedTo" else 1)
    connector = connect(sim, assigned=True, sleep=sleeps, request_timeout_seconds=0.3)

    snapshot = connector.read(None)

    assert Replica().apply(snapshot).as_view() == expected(sim.tenant, assigned=True)
    assert len(sleeps) == 1
    assert sim.pending_faults() == 0


@pytest.mark.parametrize("fault", RETRIED, ids=lambda f: f.value)
def test_fault_on_the_token_endpoint_is_retried_or_fails_the_read(
    sim: GraphSimulator, sleeps: Sleeps, fault: Fault
) -> None:
    _inject(sim, fault, endpoint="token")
    connector = connect(sim, sleep=sleeps, request_timeout_seconds=0.3)

    try:
        snapshot = connector.read(None)
    except TransientError:
        # msal keeps a throttled or failed answer for its Retry-After (5 s by default), and
        # the test does not wait: the read fails whole, and the next cycle succeeds.
        assert fault in (Fault.HTTP_429, Fault.HTTP_429_BARE, Fault.HTTP_500, Fault.HTTP_503)
        return
    assert Replica().apply(snapshot).as_view() == expected(sim.tenant)


@pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.RESET, Fault.TRUNCATED, Fault.HTTP_429],
                         ids=lambda f: f.value)
def test_a_fault_at_any_request_of_an_incremental_read_never_yields_a_partial_result(
    sim: GraphSimulator, fault: Fault
) -> None:
    t = sim.tenant
    connector = connect(sim, assigned=True, max_retries=0)  # every fault fails the read
    replica = Replica().apply(connector.read(None))
    t.hire("in.group@contoso.example", groups=[t.group_order[0]])
    t.assign(t.user_order[-1])
    t.unassign(t.group_order[1])
    t.disable(t.user_order[0])
    start = sim.request_index
    connect(sim, assigned=True).read(replica.watermark)
    requests_per_read = sim.request_index - start
    want = expected(t, assigned=True)

    failed = 0
    for k in range(1, requests_per_read + 1):
        sim.inject(fault, at=k)
        try:
            result = connector.read(replica.watermark)
        except TransientError:
            failed += 1
            continue
        finally:
            sim.clear_faults()
        assert replica.copy().apply(result).as_view() == want  # complete, or not at all

    assert failed >= requests_per_read - 1
    assert replica.apply(connector.read(replica.watermark)).as_view() == want


def test_retry_after_from_a_429_is_honoured(sim: GraphSimulator, sleeps: Sleeps) -> None:
    sim.retry_after_seconds = 7
    sim.inject(Fault.HTTP_429, endpoint="users.delta", at=1)

    connect(sim, sleep=sleeps).read(None)

    assert sleeps == [7.0]


def test_retry_after_from_a_503_is_honoured(sim: GraphSimulator, sleeps: Sleeps) -> None:
    sim.retry_after_seconds = 4
    sim.inject(Fault.VENDOR, endpoint="groups.delta", at=1, detail="503-retry-after")

    connect(sim, sleep=sleeps).read(None)

    assert sleeps == [4.0]


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    sim: GraphSimulator, sleeps: Sleeps
) -> None:
    sim.inject(Fault.HTTP_429_BARE, endpoint="users.delta", times=4)

    connect(sim, sleep=sleeps).read(None)

    assert len(sleeps) == 4
    assert all(0 < s <= 30.5 for s in sleeps)
    assert sleeps[3] > sleeps[0]


def test_retries_are_bounded_and_the_read_fails_whole(sim: GraphSimulator,
                                                      sleeps: Sleeps) -> None:
    sim.inject(Fault.HTTP_503, endpoint="groups.delta", times=1000)
    connector = connect(sim, sleep=sleeps, max_retries=3)

    with pytest.raises(TransientError) as failure:
        connector.read(None)

    assert len(sleeps) == 3
    assert "\n" not in str(failure.value)
    assert "/v1.0/groups/delta" in str(failure.value)


def test_malformed_page_past_retries_is_a_partial_read_error(sim: GraphSimulator) -> None:
    from connectors.errors import PartialReadError

    sim.inject(Fault.MALFORMED_JSON, endpoint="users.delta", times=1000)

    with pytest.raises(PartialReadError):
        connect(sim, max_retries=2).read(None)


def test_expired_access_token_is_replaced_once(sim: GraphSimulator) -> None:
    connector = connect(sim)
    mark = connector.read(None).watermark
    sim.identity.revoke_tokens()

    connector.read(mark)

    assert sim.counts()["token"] == 2


def test_401_that_persists_is_an_auth_error(sim: GraphSimulator) -> None:
    sim.inject(Fault.VENDOR, endpoint="users.delta", times=5, detail="401")

    with pytest.raises(AuthError):
        connect(sim).read(None)


def test_403_after_consent_is_withdrawn_is_an_auth_error(sim: GraphSimulator) -> None:
    sim.tenant.consent_revoked = True

    with pytest.raises(AuthError, match="403"):
        connect(sim).read(None)


def test_unknown_service_principal_is_a_permanent_error(sim: GraphSimulator) -> None:
    with pytest.raises(PermanentError, match="404"):
        connect(sim, service_principal_id="00000000-0000-0000-0000-000000000001").read(None)


def test_every_failure_is_a_connector_error(sim: GraphSimulator) -> None:
    sim.inject(Fault.RESET, endpoint="groups.delta", times=1000)

    with pytest.raises(ConnectorError):
        connect(sim, max_retries=1).read(None)
