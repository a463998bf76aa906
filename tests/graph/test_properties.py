"""Properties over random histories of a tenant, read through the connector."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.graph import GraphSimulator
from reconcile.model import Changes
from tests.graph.conftest import Replica, connect, expected, tenant
from tests.graph.test_incremental import MUTATIONS

histories = st.lists(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=6),
                     min_size=1, max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, assigned=st.booleans())
def test_replica_equals_the_tenant_after_every_read_and_a_second_read_is_empty(
    history: list[list[str]], assigned: bool
) -> None:
    """For any sequence of changes, applying each read's result to a replica reproduces the
    tenant's projection (scope, emails, active flags, groups and members), and reading
    again at once returns no change."""
    with GraphSimulator(tenant(users=25, groups=4, memberships=50), users_per_page=6,
                        group_members_per_page=7) as sim:
        connector = connect(sim, assigned=assigned)
        replica = Replica().apply(connector.read(None))
        for batch in history:
            for name in batch:
                try:
                    MUTATIONS[name](sim.tenant)
                except (IndexError, KeyError):
                    pass  # the change has nothing to act on in this history
            replica.apply(connector.read(replica.watermark))
            assert replica.as_view() == expected(sim.tenant, assigned=assigned)
            again = connector.read(replica.watermark)
            assert again == Changes(watermark=again.watermark)
        connector.close()


def test_token_is_renewed_by_msal_when_it_expires(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00") as frozen:
        connector = connect(sim)
        mark = connector.read(None).watermark
        frozen.tick(timedelta(minutes=30))
        mark = connector.read(mark).watermark
        tokens_at_half_life = sim.counts()["token"]
        frozen.tick(timedelta(minutes=31))
        connector.read(mark)

    assert tokens_at_half_life == 1
    assert sim.counts()["token"] == 2
