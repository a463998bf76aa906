"""`Members` and `LocalIds`, a group's member ids: each must mean exactly what the frozenset
of the same ids means, whatever the planner, the merge or a test does with it."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.id_sets import LocalIds, Members, RowsById
from reconcile.model import ExternalGroup, LocalGroup, LocalUser

# Each kind of id set, and sets of the ids it holds.
KINDS = [
    (Members, st.frozensets(st.text(max_size=6), max_size=12)),
    (LocalIds, st.frozensets(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=12)),
]


@pytest.mark.parametrize(("kind", "ids"), KINDS, ids=["Members", "LocalIds"])
@given(data=st.data())
def test_id_sets_behave_as_the_frozenset_of_their_ids(
    kind: type[Members] | type[LocalIds], ids: st.SearchStrategy[frozenset[Any]], data: st.DataObject
) -> None:
    a, b = data.draw(ids), data.draw(ids)
    m, n = kind(a), kind(b)
    assert m == a and a == m and (m == n) == (a == b) and (m != b) == (a != b)
    assert hash(m) == hash(a)
    assert len(m) == len(a) and list(m) == sorted(a)
    assert all(x in m for x in a) and all((x in m) == (x in a) for x in b)
    assert m - n == a - b and m | n == a | b and m & n == a & b and m ^ n == a ^ b
    assert b - m == b - a and (m <= n) == (a <= b) and isinstance(m - n, kind) and isinstance(m & b, kind)
    assert pickle.loads(pickle.dumps(m)) == m


def test_members_keep_one_copy_of_repeated_ids_and_refuse_nothing_they_are_asked() -> None:
    m = Members(["u2", "u1", "u2"])
    assert m.ids == ("u1", "u2")
    assert 7 not in m and None not in m  # not an id: not a member, no TypeError from the search


def test_a_group_keeps_any_set_of_member_ids_as_members_equal_to_it() -> None:
    group = ExternalGroup("g1", "Engineering", frozenset({"u2", "u1"}))
    assert isinstance(group.member_ids, Members)
    assert group == ExternalGroup("g1", "Engineering", Members(["u1", "u2"]))
    assert hash(group) == hash(ExternalGroup("g1", "Engineering", frozenset({"u1", "u2"})))
    assert ExternalGroup("g2", "Empty").member_ids == frozenset()


def test_members_keep_the_very_strings_they_were_given() -> None:
    ident = "".join(["u", "1"])  # not interned: a copy would be another object
    assert next(iter(Members([ident]))) is ident


def test_local_ids_refuse_what_is_not_an_id_and_tell_apart_the_two_kinds() -> None:
    m = LocalIds([3, 1, 3])
    assert list(m.ids) == [1, 3] and "1" not in m and None not in m and 1.5 not in m
    assert Members(["1"]) != LocalIds([1])


def test_a_local_group_keeps_any_set_of_member_ids_as_local_ids_equal_to_it() -> None:
    group = LocalGroup(1, "Engineering", members=frozenset({2, 1}))
    assert isinstance(group.members, LocalIds) and group.members == {1, 2}
    assert group == LocalGroup(1, "Engineering", members=LocalIds([1, 2]))
    assert hash(group) == hash(LocalGroup(1, "Engineering", members=frozenset({1, 2})))
    assert LocalGroup(2, "Empty").members == frozenset()


@given(st.lists(st.integers(min_value=1, max_value=50), unique=True, max_size=12), st.integers(min_value=0, max_value=60))
def test_rows_by_id_look_rows_up_as_a_dict_by_id_does(ids: list[int], probe: int) -> None:
    rows = [LocalUser(i, f"u{i}@x.com", None, None, None, True) for i in ids]
    as_dict = {row.id: row for row in rows}
    by_id = RowsById(rows)
    assert dict(by_id) == as_dict and len(by_id) == len(as_dict) and list(by_id) == sorted(as_dict)
    assert (probe in by_id) == (probe in as_dict) and by_id.get(probe) is as_dict.get(probe)
    assert "1" not in by_id
