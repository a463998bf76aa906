"""Every injected fault, anywhere in a read: retried to the right answer, or a ConnectorError.

Never a partial result: a read that returns must equal the read without faults.
"""

from __future__ import annotations

import pytest

from connectors.errors import ConnectorError, PartialReadError, PermanentError, TransientError
from simulators.faults import Fault
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.model import Changes, Snapshot
from tests.okta.conftest import MakeConnector, SleepLog, client_context, directory
from tests.okta.expected import org_groups, org_users, read_groups, read_users

TRANSIENT_FAULTS = [Fault.HTTP_429, Fault.HTTP_429_BARE, Fault.HTTP_500, Fault.HTTP_503, Fault.TIMEOUT,
                    Fault.RESET, Fault.MALFORMED_JSON, Fault.TRUNCATED]
# A full org read here is 7 requests: logs, users, groups, then 4 group member lists.
POSITIONS = [1, 2, 3, 5, 7]


def inject(sim: OktaSimulator, fault: Fault, **where: object) -> None:
    sim.inject(fault, seconds=1.2 if fault is Fault.TIMEOUT else None, **where)  # type: ignore[arg-type]


def assert_complete(snapshot: Snapshot, org: OktaOrg) -> None:
    assert read_users(snapshot) == org_users(org)
    assert read_groups(snapshot.groups) == org_groups(org, set(org_users(org)))


@pytest.mark.parametrize("at", POSITIONS)
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=lambda f: f.value)
def test_a_transient_fault_is_retried_to_the_complete_answer(
    make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg, fault: Fault, at: int
) -> None:
    inject(sim, fault, at=at)

    snapshot = make_connector(request_timeout_seconds=0.5).read(None)

    assert isinstance(snapshot, Snapshot)
    assert_complete(snapshot, org)
    assert sim.pending_faults() == 0


@pytest.mark.parametrize("at", POSITIONS)
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=lambda f: f.value)
def test_a_fault_that_outlasts_the_retries_fails_the_read(
    make_connector: MakeConnector, sim: OktaSimulator, fault: Fault, at: int
) -> None:
    # aiohttp itself resends an idempotent GET once when a connection drops before any answer
    inject(sim, fault, at=at, times=10 if fault is Fault.RESET else 1)

    with pytest.raises(TransientError):
        make_connector(max_retries=0, request_timeout_seconds=0.5).read(None)


@pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.MALFORMED_JSON, Fault.TRUNCATED, Fault.RESET], ids=lambda f: f.value)
def test_a_persistent_fault_on_one_group_fails_the_read_after_bounded_tries(
    make_connector: MakeConnector, sim: OktaSimulator, sleeps: SleepLog, fault: Fault
) -> None:
    sim.inject(fault, endpoint="groups.users", times=100)

    with pytest.raises(TransientError) as failure:
        make_connector(max_retries=3).read(None)

    # 4 groups, 4 tries each (aiohttp resends a dropped GET once more): bounded, then it stops
    assert sim.counts()["groups.users"] <= 4 * 4 * 2
    if fault in (Fault.MALFORMED_JSON, Fault.TRUNCATED):
        assert isinstance(failure.value, PartialReadError)


@pytest.mark.parametrize("endpoint", ["logs", "users.list", "groups.list", "groups.users"])
def test_a_failed_incremental_read_returns_nothing(
    make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg, endpoint: str
) -> None:
    connector = make_connector(max_retries=1)
    watermark = connector.read(None).watermark
    org.clock.advance(minutes=40)  # type: ignore[attr-defined]
    group = org.group_ids[1]
    org.add_member(group, next(u for u in org.user_ids if u not in org.members[group]))
    org.rename_group(org.group_ids[2], "Renamed")  # so its members are re-read
    org.hire("Ada", "Lovelace")
    sim.inject(Fault.HTTP_503, endpoint=endpoint, times=5)

    with pytest.raises(TransientError):
        connector.read(watermark)


def test_the_read_after_a_failed_one_converges(make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg) -> None:
    connector = make_connector(max_retries=0)
    watermark = connector.read(None).watermark
    org.clock.advance(minutes=40)  # type: ignore[attr-defined]
    uid = org.hire("Ada", "Lovelace")
    sim.inject(Fault.HTTP_503, endpoint="users.list")
    with pytest.raises(ConnectorError):
        connector.read(watermark)

    changes = connector.read(watermark)  # the engine keeps the old watermark after a failure

    assert isinstance(changes, Changes) and uid in {u.external_id for u in changes.users}


def test_429_waits_until_the_announced_reset(make_connector: MakeConnector, sim: OktaSimulator, sleeps: SleepLog) -> None:
    sim.fault_reset_seconds = 5
    sim.inject(Fault.HTTP_429, endpoint="users.list")

    make_connector().read(None)

    # X-Rate-Limit-Reset is 5 s after the answer's Date; one more second for clock rounding
    assert len(sleeps.pauses) == 1 and 6.0 <= sleeps.pauses[0] <= 6.5


def test_a_bare_429_backs_off_with_jitter(make_connector: MakeConnector, sim: OktaSimulator, sleeps: SleepLog) -> None:
    sim.inject(Fault.HTTP_429_BARE, endpoint="users.list", times=3)

    make_connector().read(None)

    assert len(sleeps.pauses) == 3 and all(0 < p <= 4.6 for p in sleeps.pauses)


class RealSleepLog:
    """Records every pause and really takes it (the simulator's buckets reset in real time)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.pauses.append(seconds)
        await asyncio.sleep(seconds)


def test_pacing_waits_for_the_reset_instead_of_hitting_429(clock: object) -> None:
    org = OktaOrg.generate(users=20, groups=5, memberships=60, seed=3, clock=clock)  # type: ignore[arg-type]
    sleeps = RealSleepLog()
    with OktaSimulator(org, rate_limits={"groups.id": 3}, rate_window_seconds=1.0) as sim:
        from connectors.okta import ApiToken, OktaConnector

        connector = OktaConnector(directory(sim, max_concurrency=1), ApiToken(sim.api_token),
                                  ssl_context=client_context(sim), clock=org.clock, sleep=sleeps)
        snapshot = connector.read(None)
        statuses = [r.status for r in sim.requests()]

    assert isinstance(snapshot, Snapshot) and len(snapshot.groups) == 5
    assert 429 not in statuses
    # 5 member lists at 3 per second-long window: at least one wait for a reset, none longer
    # than the window plus the second that rounding of Date adds
    assert sleeps.pauses and all(0 < p <= 2.0 for p in sleeps.pauses)


def test_an_empty_bucket_answers_429_and_the_read_still_completes(clock: object) -> None:
    org = OktaOrg.generate(users=20, groups=4, memberships=40, seed=3, clock=clock)  # type: ignore[arg-type]
    with OktaSimulator(org, rate_limits={"groups.id": 2}, rate_window_seconds=1.0) as sim:
        from connectors.okta import ApiToken, OktaConnector

        # four in flight against a bucket of two: some requests find it empty
        connector = OktaConnector(directory(sim, max_concurrency=4), ApiToken(sim.api_token),
                                  ssl_context=client_context(sim), clock=org.clock)
        snapshot = connector.read(None)

    assert isinstance(snapshot, Snapshot) and len(snapshot.groups) == 4


def test_a_deleted_app_is_a_permanent_error(make_connector: MakeConnector) -> None:
    with pytest.raises(PermanentError, match="app_id"):
        make_connector(app_id="0oa_missing").read(None)


def test_a_group_deleted_during_the_read_is_left_out(make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg) -> None:
    doomed = org.group_ids[3]

    def delete_then_answer(request, response, detail):  # type: ignore[no-untyped-def]
        return sim.error_response(request, 404)

    sim.vendor_fault = delete_then_answer  # type: ignore[method-assign]
    sim.inject(Fault.VENDOR, at=7)  # the last member list

    snapshot = make_connector().read(None)

    assert isinstance(snapshot, Snapshot) and len(snapshot.groups) == 3 and doomed in org.groups


def test_a_timeout_is_bounded_by_the_request_timeout(make_connector: MakeConnector, sim: OktaSimulator) -> None:
    sim.inject(Fault.TIMEOUT, endpoint="users.list", times=10, seconds=5)

    with pytest.raises(TransientError, match=r"timed out after 0\.3 s \(gave up after 2 attempts\)$"):
        make_connector(max_retries=1, request_timeout_seconds=0.3).read(None)

    assert sim.counts()["users.list"] == 2
