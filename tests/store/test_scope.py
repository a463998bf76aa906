"""`store.load_scope`: which groups an incremental plan sees with all their members, and
which only with the users the changes name."""

from __future__ import annotations

from reconcile.apply import apply
from reconcile.model import ExternalGroup, ExternalUser, RuleSettings, Snapshot
from reconcile.plan import plan
from store import Store, load_local_state, load_scope

RULES = RuleSettings()
USERS = [ExternalUser(f"u{i}", f"user{i}@example.com") for i in range(3)]


def _seed(store: Store) -> None:
    groups = (ExternalGroup("g1", "Staff", frozenset({"u0", "u1", "u2"})),
              ExternalGroup("g9", "Split_Administrators", frozenset({"u0", "u1"})))
    with store.session() as session:
        local = load_local_state(session)
    apply(store, plan(Snapshot(tuple(USERS), groups), local, RULES, directory="hr"), run_id=None)


def _members(store: Store, own_names: list[tuple[str, str]], group_ids: list[str]) -> dict[str, list[str]]:
    """Each scoped group's listed members, for changes naming user u0 and `group_ids`
    under the names their records carry."""
    with store.session() as session:
        scope = load_scope(session, "hr", user_ids=["u0"], emails=[], group_ids=group_ids,
                           group_names=[name for _, name in own_names] + ["Administrators"],
                           own_names=own_names)
    email = {u.id: u.email for u in scope.users}
    return {g.name: sorted(email[m] for m in g.members) for g in scope.groups}


def test_a_group_whose_own_record_carries_its_name_lists_only_the_named_users(store: Store) -> None:
    _seed(store)

    members = _members(store, own_names=[("g1", "Staff")], group_ids=["g1"])

    assert members["Staff"] == ["user0@example.com"]
    # The admin group is always whole: R4 counts its active members.
    assert members["Administrators"] == ["user0@example.com", "user1@example.com"]


def test_a_group_whose_name_another_record_claims_comes_with_all_its_members(store: Store) -> None:
    _seed(store)

    # g2 (new) claims the name g1 carries: the plan may have to weigh g1 as a whole.
    members = _members(store, own_names=[("g1", "Staff"), ("g2", "Staff")], group_ids=["g1", "g2"])

    assert members["Staff"] == ["user0@example.com", "user1@example.com", "user2@example.com"]
