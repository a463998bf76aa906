"""Property: key changes apply whenever their final state is unique, in any order."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from reconcile.apply import apply
from store import Group, Store, User
from tests.store.builders import create_group, create_user, plan, rename_group, update_user

_namespaces = itertools.count()
_examples = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def reassignments(draw: st.DrawFn) -> tuple[int, list[int], list[int], list[bool]]:
    """n rows, the pool index each ends up with (distinct; pool = n old keys + 2 new),
    the order the plan lists the changes in, and which new keys are upper-cased."""
    n = draw(st.integers(2, 6))
    final = draw(st.permutations(range(n + 2)))[:n]
    order = draw(st.permutations(range(n)))
    shout = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return n, list(final), list(order), shout


@_examples
@given(case=reassignments())
def test_any_email_reassignment_with_unique_final_emails_applies(store: Store, case: tuple) -> None:  # type: ignore[type-arg]
    """For any old -> new email assignment that is one-to-one, in any order, every change
    applies and each user ends with exactly its new email."""
    n, final, order, shout = case
    ns = f"n{next(_namespaces)}"
    pool = [f"user{k}@{ns}.example.com" for k in range(n + 2)]
    apply(store, plan(*(create_user(f"{ns}-{i}", pool[i]) for i in range(n))), run_id=None)
    with store.session() as session:
        ids = dict(session.execute(select(User.external_id, User.id).where(User.external_id.like(f"{ns}-%"))).all())
    wanted = {i: pool[final[i]].upper() if shout[i] else pool[final[i]] for i in range(n)}

    result = apply(store, plan(*(update_user(ids[f"{ns}-{i}"], email=wanted[i]) for i in order)), run_id=None)

    with store.session() as session:
        emails = dict(session.execute(select(User.external_id, User.email).where(User.external_id.like(f"{ns}-%"))).all())
    assert result.failed == 0
    assert emails == {f"{ns}-{i}": wanted[i] for i in range(n)}


@_examples
@given(case=reassignments())
def test_any_group_renaming_with_unique_final_names_applies(store: Store, case: tuple) -> None:  # type: ignore[type-arg]
    """The same for group names, which are unique case-insensitively too."""
    n, final, order, shout = case
    ns = f"n{next(_namespaces)}"
    pool = [f"{ns}-group{k}" for k in range(n + 2)]
    apply(store, plan(*(create_group(f"{ns}-{i}", pool[i]) for i in range(n))), run_id=None)
    with store.session() as session:
        ids = dict(session.execute(select(Group.external_id, Group.id).where(Group.external_id.like(f"{ns}-%"))).all())
    wanted = {i: pool[final[i]].upper() if shout[i] else pool[final[i]] for i in range(n)}

    result = apply(store, plan(*(rename_group(ids[f"{ns}-{i}"], wanted[i]) for i in order)), run_id=None)

    with store.session() as session:
        names = dict(session.execute(select(Group.external_id, Group.name).where(Group.external_id.like(f"{ns}-%"))).all())
    assert result.failed == 0
    assert names == {f"{ns}-{i}": wanted[i] for i in range(n)}
