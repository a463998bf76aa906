"""R4 in the planner: Administrators keeps an active member, judged by the group as the plan
leaves it (its own adds, removals, activations and deactivations counted)."""

from reconcile.model import Action, Changes, RuleSettings
from reconcile.plan import plan

from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings()


def ops(p, action):
    return [op for op in p.operations if op.action is action]


def changed(p, action):
    return sorted(op.user.local_id for op in ops(p, action))


def reasons(p):
    return {(r.target, r.reason) for r in p.rejections}


def memberships(p, action):
    return sorted((op.group.local_id, op.user.local_id) for op in ops(p, action))


def admins(*members):
    return local_group(9, "Administrators", *members, reserved=True)


def test_an_administrator_the_plan_activates_lets_the_last_active_one_go():
    # Cy (inactive) and Di (active) are local administrators; the alias lists Cy, active,
    # and Di is disabled: after the plan Cy is an active administrator, so nothing is held.
    local = store([local_user(3, "cy@example.com", active=False), local_user(4, "di@example.com")], [admins(3, 4)])
    snap = directory([user("u3", "cy@example.com"), user("u4", "di@example.com", active=False)],
                     [group("ga", "Split_Administrators", "u3")])
    p = plan(snap, local, RULES, directory="hr")
    assert changed(p, Action.ACTIVATE_USER) == [3]
    assert changed(p, Action.DEACTIVATE_USER) == [4]
    assert memberships(p, Action.REMOVE_MEMBER) == [(9, 4)]
    assert not {"last-active-administrator", "admin-group-would-be-empty"} & {reason for _, reason in reasons(p)}


def test_an_administrator_the_plan_adds_lets_the_last_active_one_go():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")], [admins(1)])
    snap = directory([user("u2", "bo@example.com")], [group("ga", "Split_Administrators", "u2")])
    p = plan(snap, local, RULES, directory="hr")
    assert changed(p, Action.DEACTIVATE_USER) == [1]
    assert memberships(p, Action.REMOVE_MEMBER) == [(9, 1)]
    [add] = ops(p, Action.ADD_MEMBER)
    assert add.user.key == "u2"
    assert ("ana@example.com", "last-active-administrator") not in reasons(p)


def two_administrators_of_hr():
    """Ana (u1) and Bo (u2), both active, the members of Administrators through hr's alias."""
    return store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                  local_user(2, "bo@example.com", managed_by="hr", external_id="u2")],
                 [local_group(9, "Administrators", 1, 2, managed_by="hr", external_id="ga", reserved=True)])


def test_of_two_disabled_administrators_only_the_one_the_alias_keeps_is_held():
    local = two_administrators_of_hr()
    snap = directory([user("u1", "ana@example.com", active=False), user("u2", "bo@example.com", active=False)],
                     [group("ga", "Split_Administrators", "u2")])
    p = plan(snap, local, RULES, directory="hr")
    assert changed(p, Action.DEACTIVATE_USER) == [1]
    assert memberships(p, Action.REMOVE_MEMBER) == [(9, 1)]
    assert ("bo@example.com", "last-active-administrator") in reasons(p)
    assert ("ana@example.com", "last-active-administrator") not in reasons(p)


def test_disabled_administrators_the_alias_keeps_none_of_are_all_held_and_stay_members():
    # No member would stay in the group active: every deactivation is held, and the group
    # keeps its current members.
    local = two_administrators_of_hr()
    snap = directory([user("u1", "ana@example.com", active=False), user("u2", "bo@example.com", active=False)],
                     [group("ga", "Split_Administrators")])
    p = plan(snap, local, RULES, directory="hr")
    assert not ops(p, Action.DEACTIVATE_USER) and not ops(p, Action.REMOVE_MEMBER)
    assert {("ana@example.com", "last-active-administrator"), ("bo@example.com", "last-active-administrator"),
            ("Administrators", "admin-group-would-be-empty")} <= reasons(p)


def test_an_administrator_the_plan_only_removes_keeps_the_members_and_nothing_is_held():
    # Bo stays active but the alias drops him, and Ana is disabled: keeping the current
    # members keeps Bo an active administrator, so Ana's deactivation goes ahead.
    local = two_administrators_of_hr()
    snap = directory([user("u1", "ana@example.com", active=False), user("u2", "bo@example.com")],
                     [group("ga", "Split_Administrators", "u1")])
    p = plan(snap, local, RULES, directory="hr")
    assert changed(p, Action.DEACTIVATE_USER) == [1]
    assert not ops(p, Action.REMOVE_MEMBER)
    assert ("Administrators", "admin-group-would-be-empty") in reasons(p)
    assert ("ana@example.com", "last-active-administrator") not in reasons(p)


def test_a_held_administrator_the_plan_links_joins_the_groups_that_list_it():
    local = store([local_user(1, "ana@example.com")], [admins(1)])
    snap = directory([user("u1", "ana@example.com", active=False)], [group("g1", "Engineering", "u1")])
    p = plan(snap, local, RULES, directory="hr")
    assert not ops(p, Action.DEACTIVATE_USER)
    [add] = ops(p, Action.ADD_MEMBER)
    assert (add.group.key, add.user.local_id) == ("g1", 1)
    [held] = [r for r in p.rejections if r.reason == "last-active-administrator"]
    assert held.external_id == "u1"


def test_an_incremental_read_holds_the_last_administrator_as_a_full_read_does():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com", managed_by="hr", external_id="u2")],
                  [local_group(9, "Administrators", 1, managed_by="hr", external_id="ga", reserved=True)])
    disabled = user("u1", "ana@example.com", active=False)
    full = plan(directory([disabled, user("u2", "bo@example.com")], [group("ga", "Split_Administrators", "u1")]),
                local, RULES, directory="hr")
    incremental = plan(Changes(users=(disabled,)), local, RULES, directory="hr")
    assert not ops(full, Action.DEACTIVATE_USER)
    assert incremental.operations == full.operations
    assert ("ana@example.com", "last-active-administrator") in reasons(incremental)


def test_an_administrator_the_plan_activates_but_the_alias_drops_keeps_the_members_and_nothing_is_held():
    # Cy (inactive) is activated and Di disabled, and the alias lists neither: keeping the
    # current members keeps Cy an active administrator, so Di's deactivation goes ahead
    # (and the next plan, with Cy active and Di not, changes nothing).
    local = store([local_user(3, "cy@example.com", active=False), local_user(4, "di@example.com")], [admins(3, 4)])
    snap = directory([user("u3", "cy@example.com"), user("u4", "di@example.com", active=False)],
                     [group("ga", "Split_Administrators")])
    p = plan(snap, local, RULES, directory="hr")
    assert changed(p, Action.ACTIVATE_USER) == [3] and changed(p, Action.DEACTIVATE_USER) == [4]
    assert not ops(p, Action.REMOVE_MEMBER)
    assert ("Administrators", "admin-group-would-be-empty") in reasons(p)
    after = store([local_user(3, "cy@example.com", managed_by="hr", external_id="u3"),
                   local_user(4, "di@example.com", active=False, managed_by="hr", external_id="u4")],
                  [local_group(9, "Administrators", 3, 4, managed_by="hr", external_id="ga", reserved=True)])
    assert plan(snap, after, RULES, directory="hr").is_empty


def test_a_re_bound_row_the_plan_activates_is_no_administrator_to_keep_the_last_one_for():
    # Row 1's address came back as a new person (active): it leaves Administrators whatever
    # R4 needs, so it does not stand in for Bo, the last active administrator, whose
    # deactivation is held.
    local = store([local_user(1, "ana@example.com", active=False, managed_by="hr", external_id="old"),
                   local_user(2, "bo@example.com", managed_by="hr", external_id="u2")],
                  [admins(1, 2)])
    snap = directory([user("new", "ana@example.com"), user("u2", "bo@example.com", active=False)])
    p = plan(snap, local, RULES, directory="hr")
    assert changed(p, Action.ACTIVATE_USER) == [1] and not ops(p, Action.DEACTIVATE_USER)
    assert memberships(p, Action.REMOVE_MEMBER) == [(9, 1)]
    assert ("bo@example.com", "last-active-administrator") in reasons(p)
