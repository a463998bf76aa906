"""The planner and the store agree on one name key: a case or width variant of a stored
email or group name is that row (matched, linked, looked up), never a second one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from reconcile.apply import apply
from reconcile.model import ExternalGroup, ExternalUser, RuleSettings, Snapshot
from reconcile.plan import plan
from reconcile.rules import email_key
from store import Group, Invite, Store, User, export_state, load_local_state, load_scope
from tests.store.builders import create_group, create_invite, create_user
from tests.store.builders import plan as local_plan

RULES = RuleSettings()


def seed(store: Store, *ops: Any) -> None:
    apply(store, local_plan(*ops, directory=None), run_id=None)


def cycle(store: Store, users: list[ExternalUser] = [], groups: list[ExternalGroup] = []) -> None:  # noqa: B006
    """Plan `users` and `groups` of directory `hr` against the store, and apply it."""
    with store.session() as session:
        local = load_local_state(session)
    apply(store, plan(Snapshot(tuple(users), tuple(groups)), local, RULES, directory="hr"), run_id=None)


def exported(store: Store) -> dict[str, Any]:
    with store.session() as session:
        return export_state(session)


def test_stored_keys_are_the_planners_keys(store: Store) -> None:
    seed(store, create_user(None, "Ana@Example.com"), create_group(None, "Straße"),
         create_group(None, "ＯＰＳ"), create_invite("New@Example.com"))

    with store.session() as session:
        assert session.execute(select(User.email, User.email_key)).all() == [
            ("Ana@Example.com", email_key("Ana@Example.com"))]
        assert sorted(session.execute(select(Group.name, Group.name_key)).all()) == [
            ("Straße", "strasse"), ("ＯＰＳ", "ops")]
        assert session.execute(select(Invite.email_key)).scalars().all() == ["new@example.com"]


def test_directory_group_links_to_the_local_sharp_s_variant_not_a_second_group(store: Store) -> None:
    seed(store, create_user(None, "ana@example.com"), create_group(None, "Straße"))

    cycle(store, users=[ExternalUser("u1", "ana@example.com")],
          groups=[ExternalGroup("g1", "STRASSE", frozenset({"u1"}))])

    groups = {g["name"]: g for g in exported(store)["groups"]}
    assert "Straße" not in groups
    assert groups["STRASSE"]["managed_by"] == "hr"
    assert groups["STRASSE"]["members"] == ["ana@example.com"]


def test_directory_group_links_to_the_local_fullwidth_variant(store: Store) -> None:
    seed(store, create_group(None, "ＥＮＧ"))

    cycle(store, groups=[ExternalGroup("g1", "Eng", frozenset())])

    with store.session() as session:
        rows = session.execute(select(Group.name, Group.managed_by).where(Group.reserved.is_(False))).all()
    assert rows == [("Eng", "hr")]


def test_case_and_width_variant_of_a_local_email_is_that_user(store: Store) -> None:
    seed(store, create_user(None, "ana@example.com"))

    cycle(store, users=[ExternalUser("u1", "ＡＮＡ@Example.com", display_name="Ana")])

    [user] = exported(store)["users"]
    assert (user["email"], user["managed_by"], user["external_id"]) == ("ANA@Example.com", "hr", "u1")


def test_a_second_cycle_with_the_variant_changes_nothing(store: Store) -> None:
    seed(store, create_user(None, "ana@example.com"), create_group(None, "Straße"))
    users = [ExternalUser("u1", "ＡＮＡ@example.com")]
    groups = [ExternalGroup("g1", "STRASSE", frozenset({"u1"}))]
    cycle(store, users, groups)

    with store.session() as session:
        local = load_local_state(session)
    second = plan(Snapshot(tuple(users), tuple(groups)), local, RULES, directory="hr")

    assert second.is_empty


def test_scope_finds_rows_by_any_variant_of_their_key(store: Store) -> None:
    seed(store, create_user(None, "ana@example.com"), create_group(None, "Straße"), create_group(None, "ＥＮＧ"))

    with store.session() as session:
        scope = load_scope(session, "hr", user_ids=(), emails=["ＡＮＡ@EXAMPLE.COM "],
                           group_ids=(), group_names=["STRASSE", " eng"])

    assert [u.email for u in scope.users] == ["ana@example.com"]
    assert sorted(g.name for g in scope.groups) == ["Straße", "ＥＮＧ"]


def test_local_plans_of_two_sharp_s_spellings_make_one_group(store: Store) -> None:
    seed(store, create_group(None, "Straße"))
    seed(store, create_group(None, "STRASSE"))

    with store.session() as session:
        names = session.execute(select(Group.name)).scalars().all()
    assert names == ["Straße"]
