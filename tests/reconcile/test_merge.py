"""An incremental read laid over the store equals what a full read would say."""

from reconcile.merge import merge
from reconcile.model import Changes, MembershipDelta, RuleSettings
from reconcile.plan import plan

from tests.reconcile.builders import group, local_group, local_user, store, user

RULES = RuleSettings()
LOCAL = store(
    [local_user(1, "a@example.com", managed_by="hr", external_id="u1"),
     local_user(2, "b@example.com", managed_by="hr", external_id="u2"),
     local_user(3, "c@example.com")],
    [local_group(10, "Eng", 1, 2, managed_by="hr", external_id="g1")],
)


def test_no_changes_plans_nothing():
    assert plan(Changes(), LOCAL, RULES, directory="hr").is_empty


def test_removed_user_is_deactivated_and_leaves_groups():
    p = plan(Changes(removed_user_ids=frozenset({"u2"})), LOCAL, RULES, directory="hr")
    assert [(op.action.value, op.target) for op in p.operations] == [
        ("remove-member", "Eng"), ("deactivate-user", "b@example.com")]


def test_membership_delta_adds_a_member():
    changes = Changes(users=(user("u4", "d@example.com"),),
                      memberships=(MembershipDelta("g1", added=frozenset({"u4"})),))
    snapshot = merge(changes, LOCAL, "hr", RULES)
    [eng] = snapshot.groups
    assert eng.member_ids == {"u1", "u2", "u4"}


def test_changed_group_without_complete_members_keeps_its_members():
    changes = Changes(groups=(group("g1", "Engineering"),))
    [eng] = merge(changes, LOCAL, "hr", RULES).groups
    assert eng.name == "Engineering" and eng.member_ids == {"u1", "u2"}


def test_changed_group_with_complete_members_replaces_them():
    changes = Changes(groups=(group("g1", "Eng", "u1"),), members_complete=frozenset({"g1"}))
    [eng] = merge(changes, LOCAL, "hr", RULES).groups
    assert eng.member_ids == {"u1"}


def test_unbound_local_users_are_not_part_of_the_directorys_view():
    snapshot = merge(Changes(), LOCAL, "hr", RULES)
    assert {u.external_id for u in snapshot.users} == {"u1", "u2"}
