"""When an incremental read must become a full one: Graph refusing a delta link, links older
than 7 days, the periodic full read, a changed scope or an unreadable watermark."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from connectors.graph import Watermark
from connectors.graph_http import ResyncNeeded
from simulators.graph import GraphSimulator
from reconcile.model import Changes, Snapshot
from tests.graph.conftest import Replica, connect, expected


def _delta_link_requests(sim: GraphSimulator) -> int:
    return sum("$deltatoken=" in r.target for r in sim.requests())


@pytest.mark.parametrize("endpoint", ["users.delta", "groups.delta"])
def test_expired_delta_link_answered_410_forces_a_complete_snapshot(
    sim: GraphSimulator, endpoint: str
) -> None:
    connector = connect(sim)
    mark = connector.read(None).watermark
    sim.tenant.hard_delete(sim.tenant.user_order[0])
    sim.expire_delta_link(endpoint)

    result = connector.read(mark)

    assert isinstance(result, Snapshot)
    assert Replica().apply(result).as_view() == expected(sim.tenant)


def test_resync_required_forces_a_snapshot_and_the_next_read_is_incremental(
    sim: GraphSimulator,
) -> None:
    connector = connect(sim, assigned=True)
    mark = connector.read(None).watermark
    sim.tenant.force_resync()

    result = connector.read(mark)
    after = connector.read(result.watermark)

    assert isinstance(result, Snapshot)
    assert isinstance(after, Changes)
    assert Replica().apply(result).as_view() == expected(sim.tenant, assigned=True)


def test_tenant_wide_expired_delta_state_forces_a_snapshot(sim: GraphSimulator) -> None:
    connector = connect(sim)
    mark = connector.read(None).watermark
    sim.tenant.expire_delta_tokens()

    assert isinstance(connector.read(mark), Snapshot)


def test_delta_link_older_than_seven_days_is_not_used(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00") as frozen:
        connector = connect(sim, full_every_hours=24 * 30)
        mark = connector.read(None).watermark
        frozen.tick(timedelta(days=6, hours=23))
        mark = connector.read(mark).watermark  # still incremental; new links issued now
        frozen.tick(timedelta(days=7, minutes=1))
        sim.reset_counts()
        before = _delta_link_requests(sim)

        result = connector.read(mark)

    assert isinstance(result, Snapshot)
    assert _delta_link_requests(sim) == before


def test_simulated_graph_expires_delta_links_after_seven_days(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00") as frozen:
        connector = connect(sim, full_every_hours=24 * 30)
        mark = connector.read(None).watermark
        frozen.tick(timedelta(days=7, minutes=1))
        # The connector would not use the link; ask the server directly.
        link = Watermark.load(mark or "")
        assert link is not None

        with pytest.raises(ResyncNeeded):
            connector.client.get(link.users_link)


def test_full_read_runs_once_full_every_hours_has_elapsed(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00") as frozen:
        connector = connect(sim, full_every_hours=24)
        mark = connector.read(None).watermark
        frozen.tick(timedelta(hours=23))
        first = connector.read(mark)
        frozen.tick(timedelta(hours=1, minutes=1))
        second = connector.read(first.watermark)

    assert isinstance(first, Changes)
    assert isinstance(second, Snapshot)


def test_changed_scope_forces_a_snapshot(sim: GraphSimulator) -> None:
    mark = connect(sim).read(None).watermark

    result = connect(sim, assigned=True).read(mark)

    assert isinstance(result, Snapshot)
    assert Replica().apply(result).as_view() == expected(sim.tenant, assigned=True)


def test_changed_email_source_forces_a_snapshot(sim: GraphSimulator) -> None:
    mark = connect(sim).read(None).watermark

    assert isinstance(connect(sim, email_source="mail").read(mark), Snapshot)


@pytest.mark.parametrize("watermark", ["", "not json", '{"v": 99}', '{"v": 1}'])
def test_unreadable_watermark_forces_a_snapshot(sim: GraphSimulator, watermark: str) -> None:
    assert isinstance(connect(sim).read(watermark), Snapshot)
