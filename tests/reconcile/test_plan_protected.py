"""Break-glass accounts (`[safety] protected_users`): no directory deactivates them or
removes them from Administrators; local admin actions on them still work."""

from reconcile import admin
from reconcile.model import Action, Changes, Kind, RuleSettings
from reconcile.plan import plan

from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings(protected_users=frozenset({"root@example.com"}))


def ops(p, action):
    return [op for op in p.operations if op.action is action]


def reasons(p):
    return {(r.target, r.reason) for r in p.rejections}


def root(**kwargs):
    return local_user(1, "root@example.com", **kwargs)


def test_protected_user_who_left_the_directory_is_not_deactivated():
    local = store([root(managed_by="hr", external_id="u1")])
    p = plan(directory([user("u2", "bo@example.com")]), local, RULES, directory="hr")
    assert not ops(p, Action.DEACTIVATE_USER)
    [rejection] = [r for r in p.rejections if r.reason == "protected"]
    assert rejection.kind is Kind.USER and rejection.target == "root@example.com"


def test_protected_user_disabled_in_the_directory_is_not_deactivated():
    local = store([root(managed_by="hr", external_id="u1")])
    p = plan(directory([user("u1", "root@example.com", active=False)]), local, RULES, directory="hr")
    assert not ops(p, Action.DEACTIVATE_USER)
    assert ("root@example.com", "protected") in reasons(p)


def test_unprotected_user_is_deactivated_as_usual():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com")],
                  [local_group(9, "Administrators", 2, reserved=True)])
    p = plan(directory([]), local, RULES, directory="hr")
    assert [op.user.local_id for op in ops(p, Action.DEACTIVATE_USER)] == [1]
    assert not any(r.reason == "protected" for r in p.rejections)


def test_protected_address_matches_without_case():
    local = store([local_user(1, "Root@Example.com", managed_by="hr", external_id="u1")])
    p = plan(directory([user("u2", "bo@example.com")]), local, RULES, directory="hr")
    assert not ops(p, Action.DEACTIVATE_USER)


def test_alias_group_without_the_protected_local_admin_keeps_them_in_administrators():
    local = store([root(), local_user(2, "ana@example.com", managed_by="hr", external_id="u2")],
                  [local_group(9, "Administrators", 1, 2, reserved=True)])
    snap = directory([user("u2", "ana@example.com")], [group("ga", "Split_Administrators", "u2")])
    p = plan(snap, local, RULES, directory="hr")
    assert not ops(p, Action.REMOVE_MEMBER)
    [rejection] = [r for r in p.rejections if r.reason == "protected"]
    assert rejection.kind is Kind.MEMBERSHIP and rejection.target == "Administrators: root@example.com"


def test_protected_user_who_left_keeps_administrators_but_leaves_other_directory_groups():
    local = store([root(managed_by="hr", external_id="u1"),
                   local_user(2, "ana@example.com", managed_by="hr", external_id="u2")],
                  [local_group(5, "Eng", 1, managed_by="hr", external_id="g1"),
                   local_group(9, "Administrators", 1, 2, managed_by="hr", external_id="ga", reserved=True)])
    snap = directory([user("u2", "ana@example.com")],
                     [group("g1", "Eng"), group("ga", "Split_Administrators", "u2")])
    p = plan(snap, local, RULES, directory="hr")
    assert {(op.group.local_id, op.user.local_id) for op in ops(p, Action.REMOVE_MEMBER)} == {(5, 1)}
    assert not ops(p, Action.DEACTIVATE_USER)


def test_incremental_departure_of_a_protected_user_plans_as_a_full_read_does():
    local = store([root(managed_by="hr", external_id="u1"),
                   local_user(2, "ana@example.com", managed_by="hr", external_id="u2")],
                  [local_group(5, "Eng", 1, managed_by="hr", external_id="g1"),
                   local_group(9, "Administrators", 1, 2, managed_by="hr", external_id="ga", reserved=True)])
    full = plan(directory([user("u2", "ana@example.com")],
                          [group("g1", "Eng"), group("ga", "Split_Administrators", "u2")]),
                local, RULES, directory="hr")
    incremental = plan(Changes(removed_user_ids=frozenset({"u1"})), local, RULES, directory="hr")
    assert incremental.operations == full.operations


def test_reused_protected_address_keeps_administrators_and_leaves_other_groups():
    local = store([root(active=False, managed_by="hr", external_id="old"), local_user(2, "ana@example.com")],
                  [local_group(5, "Lunch", 1), local_group(9, "Administrators", 1, 2, reserved=True)])
    p = plan(directory([user("new", "root@example.com")]), local, RULES, directory="hr")
    assert {(op.group.local_id, op.user.local_id) for op in ops(p, Action.REMOVE_MEMBER)} == {(5, 1)}
    assert ("Administrators: root@example.com", "protected") in reasons(p)


def test_local_admin_can_still_deactivate_a_protected_user():
    local = store([root(), local_user(2, "ana@example.com")],
                  [local_group(9, "Administrators", 1, 2, reserved=True)])
    [op] = admin.deactivate_user(local, "root@example.com", RULES).operations
    assert op.action is Action.DEACTIVATE_USER and op.user.local_id == 1


def test_local_admin_can_still_remove_a_protected_user_from_administrators():
    local = store([root(), local_user(2, "ana@example.com")],
                  [local_group(9, "Administrators", 1, 2, reserved=True)])
    [op] = admin.remove_member(local, "Administrators", "root@example.com", RULES).operations
    assert op.action is Action.REMOVE_MEMBER and op.user.local_id == 1
