"""Incremental reads: after each kind of change in the tenant, `read(watermark)` returns
Changes that bring a replica of the last read to exactly what the tenant now holds."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from simulators.graph import GraphSimulator, GraphTenant
from reconcile.model import Changes
from tests.graph.conftest import Replica, connect, expected

Mutation = Callable[[GraphTenant], None]


def _user(t: GraphTenant, n: int = 0) -> str:
    """The n-th user of the tenant that is in the assigned scope (an assigned user)."""
    return [pid for pid, (kind, _) in t.assignments.items() if kind == "User"][n]


def _group(t: GraphTenant, n: int = 0) -> str:
    return [pid for pid, (kind, _) in t.assignments.items() if kind == "Group"][n]


def _member(t: GraphTenant) -> str:
    return sorted(t.groups[_group(t)].members)[0]


MUTATIONS: dict[str, Mutation] = {
    "hire": lambda t: t.hire("new.person@contoso.example", groups=[_group(t)]),
    "hire-assigned": lambda t: t.hire("direct@contoso.example", assign=True),
    "leave": lambda t: t.leave(_user(t)),
    "leave-group-member": lambda t: t.leave(_member(t)),
    "soft-delete": lambda t: t.soft_delete(_user(t)),
    "restore": lambda t: (t.soft_delete(_user(t)), t.restore(_user(t))),
    "hard-delete": lambda t: t.hard_delete(_member(t)),
    "disable": lambda t: t.disable(_user(t)),
    "enable": lambda t: (t.disable(_user(t)), t.enable(_user(t))),
    "rename-upn": lambda t: t.rename_upn(_user(t), "renamed@contoso.example"),
    "change-mail": lambda t: t.set_mail(_member(t), "other@contoso.example"),
    "clear-upn-mail": lambda t: t.update_user(_user(t), mail=None),
    "add-member": lambda t: t.add_member(_group(t), t.user_order[-1]),
    "remove-member": lambda t: t.remove_member(_group(t), _member(t)),
    "create-group": lambda t: t.create_group("Fresh", members=t.user_order[:3]),
    "create-assigned-group": lambda t: t.create_group("Fresh", members=t.user_order[-3:],
                                                      assign=True),
    "rename-group": lambda t: t.rename_group(_group(t), "Renamed"),
    "delete-group": lambda t: t.delete_group(_group(t)),
    "assign-user": lambda t: t.assign(t.user_order[-2]),
    "unassign-user": lambda t: t.unassign(_user(t, 1)),
    "assign-group": lambda t: t.assign(t.group_order[-1]),
    "unassign-group": lambda t: t.unassign(_group(t, 1)),
}


@pytest.mark.parametrize("assigned", [False, True], ids=["all-scope", "assigned-scope"])
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_incremental_read_after_a_change_matches_the_tenant(
    sim: GraphSimulator, name: str, assigned: bool
) -> None:
    connector = connect(sim, assigned=assigned)
    replica = Replica().apply(connector.read(None))

    MUTATIONS[name](sim.tenant)
    result = connector.read(replica.watermark)

    assert isinstance(result, Changes)
    assert replica.apply(result).as_view() == expected(sim.tenant, assigned=assigned)


def test_no_op_incremental_read_is_empty_and_costs_one_page_per_round(
    sim: GraphSimulator,
) -> None:
    connector = connect(sim)
    mark = connector.read(None).watermark
    sim.reset_counts()

    result = connector.read(mark)

    assert result == Changes(watermark=result.watermark)
    assert sim.counts() == {"users.delta": 1, "groups.delta": 1}


def test_user_leaving_assigned_scope_is_removed_and_entering_user_is_fetched_by_id(
    sim: GraphSimulator,
) -> None:
    t = sim.tenant
    leaving = t.hire("direct@contoso.example", assign=True)
    in_groups = set().union(*(t.groups[g].members for g in (_group(t), _group(t, 1))))
    entering = next(u for u in reversed(t.user_order)
                    if u not in in_groups and u not in t.assignments)
    connector = connect(sim, assigned=True)
    mark = connector.read(None).watermark
    sim.reset_counts()
    t.unassign(leaving)
    t.assign(entering)

    result = connector.read(mark)

    assert isinstance(result, Changes)
    assert leaving in result.removed_user_ids
    assert [u.external_id for u in result.users] == [entering]
    assert sim.counts()["users"] == 1  # one `id in (...)` request


@pytest.mark.parametrize("assigned", [False, True], ids=["all-scope", "assigned-scope"])
def test_many_random_changes_over_several_cycles_converge(sim: GraphSimulator,
                                                          assigned: bool) -> None:
    rng = random.Random(11)
    t = sim.tenant
    connector = connect(sim, assigned=assigned)
    replica = Replica().apply(connector.read(None))
    for _ in range(6):
        for _ in range(8):
            name = rng.choice(sorted(MUTATIONS))
            try:
                MUTATIONS[name](t)
            except (IndexError, KeyError):
                pass  # nothing left to act on (e.g. no assigned group any more)
        result = connector.read(replica.watermark)
        assert replica.apply(result).as_view() == expected(t, assigned=assigned)
