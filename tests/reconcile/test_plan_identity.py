"""R7: an email that comes back under a different external id is a new person: the row is
re-bound and loses every group membership of the person it belonged to."""

from reconcile.model import Action, Changes, RuleSettings
from reconcile.plan import plan
from store.events import operation_event
from store.models import Outcome

from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings()


def ops(p, action):
    return [op for op in p.operations if op.action is action]


def reasons(p):
    return {(r.target, r.reason) for r in p.rejections}


def removed(p):
    """(group id, user id, reason) of every membership removal."""
    return {(op.group.local_id, op.user.local_id, op.reason) for op in ops(p, Action.REMOVE_MEMBER)}


def departed_ana(*, active=False):
    """Ana (row 1) left directory `hr`; Bo (row 2) is another active administrator."""
    return [
        local_user(1, "ana@example.com", active=active, managed_by="hr", external_id="old"),
        local_user(2, "bo@example.com"),
    ]


def test_reused_email_rebinds_the_row_and_says_identity_changed():
    local = store(departed_ana())
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    [link] = ops(p, Action.LINK_USER)
    assert link.user.local_id == 1 and link.value("external_id") == "new"
    assert link.reason == "identity-changed"


def test_reused_email_loses_local_admin_and_other_directory_groups():
    local = store(departed_ana(), [
        local_group(5, "Lunch", 1),
        local_group(6, "Finance", 1, managed_by="erp", external_id="f1"),
        local_group(9, "Administrators", 1, 2, reserved=True),
    ])
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    assert removed(p) == {(5, 1, "identity-changed"), (6, 1, "identity-changed"), (9, 1, "identity-changed")}


def test_reused_email_loses_the_directory_groups_the_new_person_is_not_in():
    local = store(departed_ana(), [
        local_group(5, "Eng", 1, managed_by="hr", external_id="g1"),
        local_group(6, "Ops", 1, managed_by="hr", external_id="g2"),
    ])
    snap = directory([user("new", "ana@example.com")], [group("g1", "Eng"), group("g2", "Ops", "new")])
    p = plan(snap, local, RULES, directory="hr")
    assert removed(p) == {(5, 1, "identity-changed")}
    assert not ops(p, Action.ADD_MEMBER)  # the new person's own membership stays as it is


def test_reused_email_is_not_re_added_to_a_local_group_by_the_next_cycle():
    local = store(departed_ana(), [local_group(5, "Lunch", 1)])
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    assert {(op.group.local_id, op.user.local_id) for op in ops(p, Action.REMOVE_MEMBER)} == {(5, 1)}
    after = store([local_user(1, "ana@example.com", managed_by="hr", external_id="new"), local_user(2, "bo@example.com")],
                  [local_group(5, "Lunch")])
    assert plan(directory([user("new", "ana@example.com")]), after, RULES, directory="hr").is_empty


def test_first_sight_link_of_a_local_user_keeps_their_groups():
    local = store([local_user(1, "ana@example.com")], [local_group(5, "Lunch", 1)])
    p = plan(directory([user("u1", "ana@example.com")]), local, RULES, directory="hr")
    [link] = ops(p, Action.LINK_USER)
    assert link.reason is None
    assert not ops(p, Action.REMOVE_MEMBER)


def test_bound_user_keeps_groups_across_an_email_rename():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")], [local_group(5, "Lunch", 1)])
    p = plan(directory([user("u1", "ana.b@example.com")]), local, RULES, directory="hr")
    assert not ops(p, Action.REMOVE_MEMBER) and not ops(p, Action.LINK_USER)


def test_reused_email_of_the_last_active_administrator_keeps_admin_with_a_rejection():
    # Ana left and her address went to someone else within one cycle: her row is still
    # the only active administrator, so R4 keeps it in the group; every other group goes.
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="old")],
                  [local_group(5, "Lunch", 1), local_group(9, "Administrators", 1, reserved=True)])
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    assert removed(p) == {(5, 1, "identity-changed")}
    assert ("Administrators", "admin-group-would-be-empty") in reasons(p)


def test_reused_email_of_an_inactive_row_leaves_administrators_even_with_no_active_admin():
    # The departed row is no active administrator to keep; the new person must not
    # inherit the old one's rights.
    local = store([local_user(1, "ana@example.com", active=False, managed_by="hr", external_id="old")],
                  [local_group(9, "Administrators", 1, reserved=True)])
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    assert removed(p) == {(9, 1, "identity-changed")}
    assert [op.user.local_id for op in ops(p, Action.ACTIVATE_USER)] == [1]


def test_reused_email_leaves_the_directory_managed_admin_group():
    local = store(departed_ana(),
                  [local_group(9, "Administrators", 1, 2, managed_by="hr", external_id="ga", reserved=True)])
    snap = directory([user("new", "ana@example.com"), user("b", "bo@example.com")],
                     [group("ga", "Split_Administrators", "b")])
    p = plan(snap, local, RULES, directory="hr")
    assert (9, 1, "identity-changed") in removed(p)


def test_incremental_reuse_leaves_groups_the_changes_do_not_touch():
    local = store(departed_ana(), [
        local_group(5, "Eng", 1, managed_by="hr", external_id="g1"),
        local_group(6, "Lunch", 1),
    ])
    changes = Changes(users=(user("new", "ana@example.com"),), removed_user_ids=frozenset({"old"}))
    p = plan(changes, local, RULES, directory="hr")
    assert [op.reason for op in ops(p, Action.LINK_USER)] == ["identity-changed"]
    assert removed(p) == {(5, 1, "identity-changed"), (6, 1, "identity-changed")}


def test_incremental_and_full_reuse_plan_the_same_removals():
    local = store(departed_ana(), [
        local_group(5, "Eng", 1, managed_by="hr", external_id="g1"),
        local_group(6, "Lunch", 1),
        local_group(9, "Administrators", 1, 2, reserved=True),
    ])
    full = plan(directory([user("new", "ana@example.com")], [group("g1", "Eng")]), local, RULES, directory="hr")
    changes = Changes(users=(user("new", "ana@example.com"),), removed_user_ids=frozenset({"old"}))
    incremental = plan(changes, local, RULES, directory="hr")
    assert removed(full) == removed(incremental)


def test_the_event_of_a_removal_says_identity_changed():
    local = store(departed_ana(), [local_group(5, "Lunch", 1)])
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    [remove] = ops(p, Action.REMOVE_MEMBER)
    assert operation_event(1, 1, remove, Outcome.APPLIED)["reason"] == "identity-changed"
    assert operation_event(1, 1, remove, Outcome.FAILED, reason="database-error")["reason"] == "database-error"
