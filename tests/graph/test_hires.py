"""Which changed users an incremental read marks as created since the last read: only those
Graph stamped (`createdDateTime`) past the previous read's end plus the clock margin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time

from connectors.errors import PermanentError
from connectors.graph_watermark import CLOCK_MARGIN, Watermark
from reconcile.model import Changes
from simulators.graph import GraphSimulator
from tests.graph.conftest import connect


def _created(sim: GraphSimulator, mark: str | None, **options: object) -> frozenset[str]:
    result = connect(sim, **options).read(mark)  # type: ignore[arg-type]
    assert isinstance(result, Changes)
    return result.user_groups_complete


@pytest.mark.parametrize("assigned", [False, True], ids=["all-scope", "assigned-scope"])
def test_a_user_created_after_the_last_read_is_marked_created(sim: GraphSimulator,
                                                              assigned: bool) -> None:
    t = sim.tenant
    with freeze_time("2026-03-02 09:00:00") as frozen:
        mark = connect(sim, assigned=assigned).read(None).watermark
        frozen.tick(CLOCK_MARGIN + timedelta(minutes=1))
        hired = t.hire("new.person@contoso.example", assign=True)
        t.disable(t.user_order[0])  # a changed user created long ago

        created = _created(sim, mark, assigned=assigned)

    assert created == {hired}


def test_a_user_created_within_the_clock_margin_is_not_marked(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00") as frozen:
        mark = connect(sim).read(None).watermark
        frozen.tick(CLOCK_MARGIN - timedelta(seconds=30))
        sim.tenant.hire("early@contoso.example")

        assert _created(sim, mark) == frozenset()


def test_a_user_created_before_the_last_read_is_not_marked_when_changed_after_it(
    sim: GraphSimulator,
) -> None:
    t = sim.tenant
    with freeze_time("2026-03-02 09:00:00") as frozen:
        hired = t.hire("hired.before@contoso.example", enabled=False)
        frozen.tick(timedelta(minutes=30))
        mark = connect(sim).read(None).watermark
        frozen.tick(timedelta(minutes=30))
        t.enable(hired)

        assert _created(sim, mark) == frozenset()


def test_a_user_without_created_date_time_is_not_marked(sim: GraphSimulator) -> None:
    t = sim.tenant
    with freeze_time("2026-03-02 09:00:00") as frozen:
        mark = connect(sim).read(None).watermark
        frozen.tick(timedelta(minutes=30))
        hired = t.hire("no.stamp@contoso.example")
        t.users[hired].created_date_time = None  # Graph: null for some users before June 2018

        assert _created(sim, mark) == frozenset()


def test_a_watermark_from_before_links_at_marks_no_one(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00") as frozen:
        mark = connect(sim).read(None).watermark
        assert mark is not None
        older = json.loads(mark)
        del older["links_at"]
        assert Watermark.load(json.dumps(older)) is not None
        frozen.tick(timedelta(minutes=30))
        sim.tenant.hire("new.person@contoso.example")

        result = connect(sim).read(json.dumps(older))

    assert isinstance(result, Changes)  # still incremental
    assert result.user_groups_complete == frozenset()
    assert Watermark.load(result.watermark or "").links_at is not None  # type: ignore[union-attr]


def test_links_at_is_when_the_read_ended_and_survives_a_round_trip(sim: GraphSimulator) -> None:
    with freeze_time("2026-03-02 09:00:00"):
        mark = Watermark.load(connect(sim).read(None).watermark or "")

    assert mark is not None and mark.links_at is not None
    assert mark.links_at.isoformat() == "2026-03-02T09:00:00+00:00"
    assert Watermark.load(mark.dump()) == mark


def test_a_tenant_whose_users_delta_refuses_created_date_time_is_read_without_it(sim: GraphSimulator) -> None:
    """Graph refuses some properties in a delta's `$select` with a 400; were it to refuse
    `createdDateTime`, reads go on without it and nobody counts as created (their groups
    are read one user at a time, as before)."""
    t = sim.tenant
    t.users_delta_refuses = frozenset({"createdDateTime"})
    with freeze_time("2026-03-02 09:00:00") as frozen:
        full = connect(sim).read(None)
        frozen.tick(timedelta(minutes=30))
        hired = t.hire("new.person@contoso.example")

        result = connect(sim).read(full.watermark)

    assert isinstance(result, Changes)
    assert hired in {u.external_id for u in result.users}
    assert result.user_groups_complete == frozenset()


def test_a_users_delta_refusing_another_property_still_fails_the_read(sim: GraphSimulator) -> None:
    """Tried once more without `createdDateTime`, the round is refused again: the read fails
    (nothing partial is applied) and says what Graph refused."""
    sim.tenant.users_delta_refuses = frozenset({"mail"})
    sim.reset_counts()

    with pytest.raises(PermanentError, match="HTTP 400 BadRequest.*mail"):
        connect(sim).read(None)
    assert sim.counts()["users.delta"] == 2
