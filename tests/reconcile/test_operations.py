"""A plan's operations kept as sections (`Operations`): user creates and member additions
are made from their records when reached, and must be exactly the operations a plan of
operations would hold, however they are read."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from reconcile.model import Action, Operation, Operations, Ref, RuleSettings, Section, of_actions
from reconcile.plan import plan
from reconcile.plan_members import GroupAdds, MemberAdds
from reconcile.plan_users import CleanUser, UserCreates
from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings()


def _clean(n: int) -> CleanUser:
    return CleanUser(f"u{n}", f"u{n}@example.com", f"Given{n}", None, None, True)


def _eager(n: int) -> Operation:
    return Operation(Action.DEACTIVATE_USER, f"x{n}@example.com", user=Ref(local_id=n), values=(("active", False),))


sections = st.lists(
    st.one_of(
        st.lists(st.integers(0, 50), max_size=4).map(lambda ns: tuple(_eager(n) for n in ns)),
        st.lists(st.integers(0, 50), max_size=4).map(lambda ns: UserCreates([_clean(n) for n in ns], "hr")),
        st.lists(st.lists(st.integers(0, 50), max_size=3), max_size=3).map(
            lambda groups: MemberAdds(
                GroupAdds(f"G{i}", Ref(local_id=i), tuple(_clean(n) for n in ns), (("managed_by", "hr"),))
                for i, ns in enumerate(groups)
            )
        ),
    ),
    max_size=5,
)


@given(sections)
def test_operations_read_alike_whether_iterated_indexed_sliced_or_counted(parts: list[tuple[Operation, ...] | Section]) -> None:
    ops = Operations(parts)
    flat = tuple(op for part in parts for op in part)
    assert ops == flat and flat == ops and len(ops) == len(flat) and hash(ops) == hash(flat)
    assert tuple(ops[i] for i in range(len(ops))) == flat
    assert tuple(ops[-i] for i in range(1, len(ops) + 1)) == flat[::-1]
    assert ops[1:-1] == flat[1:-1] and ops[::2] == flat[::2]
    assert ops.actions() == Counter(op.action for op in flat)
    wanted = {Action.CREATE_USER, Action.DEACTIVATE_USER}
    assert list(of_actions(ops, wanted)) == [(i, op) for i, op in enumerate(flat) if op.action in wanted]
    for part in parts:
        assert tuple(part[i] for i in range(len(part))) == tuple(part)
    for beyond in (len(ops), -len(ops) - 1):
        try:
            ops[beyond]
        except IndexError:
            pass
        else:
            raise AssertionError(f"index {beyond} of {len(ops)} operations did not raise")


def test_a_first_cycle_keeps_its_creates_and_additions_as_records_not_operations() -> None:
    the_plan = plan(directory([user("u1"), user("u2")], [group("g1", "Eng", "u1", "u2")]), store(), RULES,
                    directory="hr")
    assert isinstance(the_plan.operations, Operations)
    made = [s for s in the_plan.operations.sections if isinstance(s, Section)]
    assert [type(s) for s in made] == [UserCreates, MemberAdds]
    assert [op.action for op in the_plan.operations] == [Action.CREATE_USER] * 2 + [Action.CREATE_GROUP] + [
        Action.ADD_MEMBER] * 2
    assert the_plan.operations[-1] == Operation(Action.ADD_MEMBER, "Eng", group=Ref(key="g1"), user=Ref(key="u2"),
                                                values=(("member", "u2@example.com"),))
    assert the_plan.counts() == {"add-member": 2, "create-group": 1, "create-user": 2, "rejected": 0}


def test_additions_to_a_group_that_exists_expect_its_binding_as_planned() -> None:
    local = store([local_user(1, "u1@example.com", managed_by="hr", external_id="u1")],
                  [local_group(7, "Eng", managed_by="hr", external_id="g1")])
    the_plan = plan(directory([user("u1"), user("u2")], [group("g1", "Eng", "u1", "u2")]), local, RULES,
                    directory="hr")
    adds = [op for op in the_plan.operations if op.action is Action.ADD_MEMBER]
    assert adds == [
        Operation(Action.ADD_MEMBER, "Eng", group=Ref(local_id=7), user=Ref(local_id=1),
                  values=(("member", "u1@example.com"),), expect=(("external_id", "g1"), ("managed_by", "hr"))),
        Operation(Action.ADD_MEMBER, "Eng", group=Ref(local_id=7), user=Ref(key="u2"),
                  values=(("member", "u2@example.com"),), expect=(("external_id", "g1"), ("managed_by", "hr"))),
    ]
