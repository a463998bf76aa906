"""The connector's default clock is `reconcile.clock.now`: frozen time decides when a full
read is due (freezegun with the event loop on real time, and the SDK left alone)."""

from __future__ import annotations

from datetime import timedelta

import freezegun

from connectors.okta import ApiToken, OktaConnector
from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.model import Changes, Snapshot
from tests.okta.conftest import client_context, directory


def test_full_every_hours_follows_the_engine_clock(sim: OktaSimulator, org: OktaOrg, clock: ManualClock) -> None:
    connector = OktaConnector(directory(sim), ApiToken(sim.api_token), ssl_context=client_context(sim))
    with freezegun.freeze_time(clock(), real_asyncio=True, ignore=["okta"]) as frozen:
        first = connector.read(None)

        def later(hours: float) -> Snapshot | Changes:
            frozen.tick(timedelta(hours=hours))
            clock.advance(hours=hours)
            return connector.read(first.watermark)

        assert isinstance(first, Snapshot)
        assert isinstance(later(23), Changes)
        assert isinstance(later(1), Snapshot)


def test_a_read_under_frozen_time_far_behind_the_real_clock(sim: OktaSimulator, org: OktaOrg,
                                                             clock: ManualClock) -> None:
    """The SDK's executor reads the real clock (`okta` is left unfrozen) while our code reads
    the frozen one: a frozen moment further back than the request timeout (2 s here) must not
    turn every request into a timeout."""
    connector = OktaConnector(directory(sim), ApiToken(sim.api_token), ssl_context=client_context(sim))
    with freezegun.freeze_time(clock() - timedelta(minutes=5), real_asyncio=True, ignore=["okta"]):
        snapshot = connector.read(None)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.users and {u.external_id for u in snapshot.users} == {u.external_id for u in connector.read(None).users}
