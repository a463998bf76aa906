"""`load_local_state`: what the planner sees is what apply wrote."""

from __future__ import annotations

from reconcile.apply import apply
from reconcile.model import ExternalUser, LocalGroup, LocalInvite, LocalState, LocalUser
from store import Store, load_local_state
from tests.store.builders import (
    add_member,
    create_group,
    create_invite,
    create_user,
    deactivate,
    plan,
    revoke_invite,
)


def test_local_state_round_trips_what_apply_wrote(store: Store) -> None:
    apply(
        store,
        plan(
            create_user("u1", "ann@x.com", given="Ann", family="Lee", display="Ann Lee"),
            create_user(None, "bob@x.com", given=None, family=None, display="Bob"),
            create_group("g1", "Eng"),
            create_group(None, "Administrators", reserved=True),
            add_member("g1", "u1"),
            add_member("g1", "bob@x.com"),
            add_member("Administrators", "u1"),
            create_invite("new@x.com"),
            create_invite("gone@x.com"),
            deactivate(2),
        ),
        run_id=None,
    )
    apply(store, plan(revoke_invite(2)), run_id=None)

    with store.session() as session:
        state = load_local_state(session)

    assert state == LocalState(
        users=(
            LocalUser(1, "ann@x.com", "Ann", "Lee", "Ann Lee", True, "okta", "u1"),
            LocalUser(2, "bob@x.com", None, None, "Bob", False, None, None),
        ),
        groups=(
            LocalGroup(1, "Eng", "okta", "g1", False, frozenset({1, 2})),
            LocalGroup(2, "Administrators", None, None, True, frozenset({1})),
        ),
        invites=(LocalInvite(1, "new@x.com", "open"),),
    )


def test_empty_store_loads_an_empty_state(store: Store) -> None:
    with store.session() as session:
        assert load_local_state(session) == LocalState()


def test_a_row_takes_the_strings_of_the_record_it_shares_where_they_are_equal(store: Store) -> None:
    apply(store, plan(create_user("u1", "ann@x.com", given="Ann", family="Lee", display="Ann Lee"),
                      create_user("u2", "bob@x.com", given="Bob", family=None, display="Bob")), run_id=None)
    # Built at run time, so that they are other objects than any the store returns.
    same = ExternalUser("".join(["u", "1"]), "".join(["ann", "@x.com"]), "".join(["A", "nn"]), "Lee", "Ann Lee")
    renamed = ExternalUser("u2", "robert@x.com", "Robert", None, "Bob")

    with store.session() as session:
        shared = load_local_state(session, sharing=[same, renamed])
        plain = load_local_state(session)

    assert shared == plain  # the same values, whichever objects hold them
    ann, bob = shared.users
    assert ann.external_id is same.external_id and ann.email is same.email and ann.given_name is same.given_name
    assert bob.email == "bob@x.com" and bob.given_name == "Bob"  # the row's own, where the record differs
    assert bob.display_name is renamed.display_name
