"""`export_state`: one canonical, sorted shape."""

from __future__ import annotations

from reconcile.apply import apply
from store import Store, export_state
from tests.store.builders import add_member, create_group, create_invite, create_user, plan, revoke_invite


def test_export_has_exactly_the_documented_shape_and_key_order(store: Store) -> None:
    apply(store, plan(create_user("u1", "ann@x.com"), create_group(None, "Local"), add_member("Local", "u1"),
                      create_invite("new@x.com")), run_id=None)

    with store.session() as session:
        state = export_state(session)

    assert list(state) == ["users", "groups", "invites"]
    assert list(state["users"][0]) == [
        "email", "display_name", "given_name", "family_name", "active", "managed_by", "external_id",
    ]
    assert state["groups"] == [{"name": "Local", "managed_by": None, "external_id": None, "members": ["ann@x.com"]}]
    assert state["invites"] == [{"email": "new@x.com", "status": "open"}]


def test_export_sorts_by_the_exact_text_as_pythons_sorted_does(store: Store) -> None:
    users = ["bob@x.com", "Ann@x.com", "carl@x.com", "alex@x.com"]
    p = plan(
        *(create_user(f"u{n}", email) for n, email in enumerate(users)),
        create_group("g1", "beta"),
        create_group("g2", "Alpha"),
        *(add_member("g1", f"u{n}") for n in range(4)),
        create_invite("Zed@x.com"),
        create_invite("amy@x.com"),
    )
    apply(store, p, run_id=None)
    apply(store, plan(revoke_invite(1)), run_id=None)

    with store.session() as session:
        state = export_state(session)

    assert [u["email"] for u in state["users"]] == sorted(users) == ["Ann@x.com", "alex@x.com", "bob@x.com", "carl@x.com"]
    assert [g["name"] for g in state["groups"]] == ["Alpha", "beta"]
    assert state["groups"][1]["members"] == sorted(users)
    assert state["invites"] == [{"email": "Zed@x.com", "status": "revoked"}, {"email": "amy@x.com", "status": "open"}]
