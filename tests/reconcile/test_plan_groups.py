"""Planning groups: R2 (names under 25), R3/R4 (Administrators), R6 (link before create), R7."""

from dataclasses import replace

from reconcile.model import Action, Changes, RuleSettings
from reconcile.plan import plan

from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings()


def ops(p, action):
    return [op for op in p.operations if op.action is action]


def reasons(p):
    return {(r.target, r.reason) for r in p.rejections}


def test_group_name_of_24_characters_is_created():
    p = plan(directory([], [group("g1", "x" * 24)]), store(), RULES, directory="hr")
    assert [op.target for op in ops(p, Action.CREATE_GROUP)] == ["x" * 24]


def test_group_name_of_25_characters_is_rejected():
    p = plan(directory([], [group("g1", "x" * 25)]), store(), RULES, directory="hr")
    assert not ops(p, Action.CREATE_GROUP)
    assert ("x" * 25, "name-too-long") in reasons(p)


def test_group_name_is_trimmed_before_it_is_measured():
    p = plan(directory([], [group("g1", "  " + "x" * 24 + "  ")]), store(), RULES, directory="hr")
    assert ops(p, Action.CREATE_GROUP)[0].value("name") == "x" * 24


def test_empty_group_name_is_rejected():
    p = plan(directory([], [group("g1", "   ")]), store(), RULES, directory="hr")
    assert ("g1", "empty-name") in reasons(p)


def test_directory_group_named_administrators_is_rejected():
    admin = local_group(1, "Administrators", reserved=True)
    p = plan(directory([], [group("g1", "administrators")]), store(groups=[admin]), RULES, directory="hr")
    assert p.is_empty
    assert ("administrators", "reserved-name") in reasons(p)


def test_directory_group_renamed_into_administrators_is_rejected_and_kept():
    local = store(groups=[local_group(1, "Administrators", reserved=True),
                          local_group(2, "Ops", managed_by="hr", external_id="g1")])
    p = plan(directory([], [group("g1", "Administrators")]), local, RULES, directory="hr")
    assert p.is_empty  # neither renamed nor unlinked
    assert ("Administrators", "reserved-name") in reasons(p)


def test_split_administrators_members_become_administrators_members():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "old@example.com")],
                  [local_group(9, "Administrators", 2, reserved=True)])
    p = plan(directory([user("u1", "ana@example.com")], [group("g1", "Split_Administrators", "u1")]),
             local, RULES, directory="hr")
    [link] = ops(p, Action.LINK_GROUP)
    assert link.group.local_id == 9
    [add] = ops(p, Action.ADD_MEMBER)
    assert add.group.local_id == 9 and add.user.local_id == 1
    [remove] = ops(p, Action.REMOVE_MEMBER)
    assert remove.user.local_id == 2


def test_empty_split_administrators_keeps_current_admins():
    local = store([local_user(1, "ana@example.com")],
                  [local_group(9, "Administrators", 1, reserved=True)])
    p = plan(directory([], [group("g1", "Split_Administrators")]), local, RULES, directory="hr")
    assert not ops(p, Action.REMOVE_MEMBER)
    assert [op.action for op in p.operations] == [Action.LINK_GROUP]
    assert ("Administrators", "admin-group-would-be-empty") in reasons(p)


def test_deactivating_every_active_admin_is_held():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")],
                  [local_group(9, "Administrators", 1, reserved=True)])
    p = plan(directory([]), local, RULES, directory="hr")
    assert not ops(p, Action.DEACTIVATE_USER)
    assert ("ana@example.com", "last-active-administrator") in reasons(p)


def test_deactivating_one_of_two_admins_goes_ahead():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com")],
                  [local_group(9, "Administrators", 1, 2, reserved=True)])
    p = plan(directory([]), local, RULES, directory="hr")
    assert [op.user.local_id for op in ops(p, Action.DEACTIVATE_USER)] == [1]


def test_administrators_group_is_created_when_missing():
    p = plan(directory([]), store(admin=False), RULES, directory="hr")
    [create] = p.operations
    assert create.action is Action.CREATE_GROUP
    assert create.value("reserved") is True and create.value("managed_by") is None


def test_group_links_to_unmanaged_local_group_of_same_name_case_insensitively():
    local = store(groups=[local_group(3, "Engineering")])
    p = plan(directory([], [group("g1", "engineering")]), local, RULES, directory="hr")
    [link] = ops(p, Action.LINK_GROUP)
    assert link.group.local_id == 3
    assert not ops(p, Action.CREATE_GROUP)


def test_linking_by_name_can_be_turned_off():
    local = store(groups=[local_group(3, "Engineering")])
    rules = replace(RULES, link_groups_by_name=False)
    p = plan(directory([], [group("g1", "Engineering")]), local, rules, directory="hr")
    assert not ops(p, Action.LINK_GROUP)
    assert ("Engineering", "name-taken") in reasons(p)


def test_explicit_link_takes_precedence_over_the_name():
    local = store(groups=[local_group(3, "Eng Team"), local_group(4, "Engineering")])
    p = plan(directory([], [group("g1", "Engineering")]), local, RULES, directory="hr", links={"g1": "Eng Team"})
    [link] = ops(p, Action.LINK_GROUP)
    assert link.group.local_id == 3
    assert not ops(p, Action.RENAME_GROUP)


def test_group_managed_by_other_directory_is_not_taken_over():
    local = store(groups=[local_group(3, "Engineering", managed_by="okta", external_id="x")])
    p = plan(directory([], [group("g1", "Engineering")]), local, RULES, directory="hr")
    assert ("Engineering", "owned-by-other-directory") in reasons(p)
    assert not ops(p, Action.LINK_GROUP)


def test_group_rename_updates_the_same_record():
    local = store(groups=[local_group(3, "Eng", managed_by="hr", external_id="g1")])
    p = plan(directory([], [group("g1", "Engineering")]), local, RULES, directory="hr")
    [rename] = ops(p, Action.RENAME_GROUP)
    assert rename.group.local_id == 3 and rename.value("name") == "Engineering"


def test_group_leaving_scope_is_unlinked_with_members_kept():
    local = store([local_user(1, "a@example.com")], [local_group(3, "Eng", 1, managed_by="hr", external_id="g1")])
    p = plan(directory([]), local, RULES, directory="hr")
    [unlink] = ops(p, Action.UNLINK_GROUP)
    assert unlink.group.local_id == 3
    assert not ops(p, Action.REMOVE_MEMBER)


def test_member_that_names_no_user_is_rejected_and_others_kept():
    p = plan(directory([user("u1")], [group("g1", "Eng", "u1", "ghost")]), store(), RULES, directory="hr")
    assert len(ops(p, Action.ADD_MEMBER)) == 1
    assert ("Eng: ghost", "unknown-member") in reasons(p)


def test_an_incremental_read_does_not_call_a_member_it_does_not_name_unknown():
    # g1 comes complete with a member who is inactive in the directory: never created
    # here, and not among the users this read changed. A full read names every user, so
    # only it can tell an unknown member from one not provisioned.
    local = store([local_user(1, "a@example.com", managed_by="hr", external_id="u1")],
                  [local_group(3, "Eng", 1, managed_by="hr", external_id="g1")])
    changes = Changes(groups=(group("g1", "Eng", "u1", "u-inactive"),), members_complete=frozenset({"g1"}))
    p = plan(changes, local, RULES, directory="hr")
    assert p.is_empty and not p.rejections


def test_group_too_long_name_after_rename_is_held():
    local = store(groups=[local_group(3, "Eng", managed_by="hr", external_id="g1")])
    p = plan(directory([], [group("g1", "E" * 30)]), local, RULES, directory="hr")
    assert not ops(p, Action.RENAME_GROUP) and not ops(p, Action.UNLINK_GROUP)


def test_two_directory_groups_with_one_name_first_wins():
    p = plan(directory([], [group("g1", "Eng"), group("g2", "ENG")]), store(), RULES, directory="hr")
    assert [op.target for op in ops(p, Action.CREATE_GROUP)] == ["Eng"]
    assert ("ENG", "duplicate-name") in reasons(p)


def test_split_administrators_creates_a_missing_administrators_group_as_managed():
    p = plan(directory([user("u1")], [group("g1", "Split_Administrators", "u1")]), store(admin=False), RULES, directory="hr")
    [create] = ops(p, Action.CREATE_GROUP)
    assert create.value("name") == "Administrators" and create.value("reserved") is True
    assert create.value("managed_by") == "hr" and create.value("external_id") == "g1"
    [add] = ops(p, Action.ADD_MEMBER)
    assert add.group == create.group


def test_group_linked_by_name_takes_the_directorys_spelling():
    local = store(groups=[local_group(3, "ENGINEERING")])
    p = plan(directory([], [group("g1", "Engineering")]), local, RULES, directory="hr")
    assert [op.action for op in p.operations] == [Action.RENAME_GROUP, Action.LINK_GROUP]
    assert ops(p, Action.RENAME_GROUP)[0].value("name") == "Engineering"


def test_group_that_only_looks_like_administrators_is_rejected():
    p = plan(directory([], [group("g1", "\u0410dministrators")]), store(), RULES, directory="hr")  # Cyrillic А
    assert p.is_empty
    assert ("\u0410dministrators", "reserved-name") in reasons(p)


def test_names_in_other_scripts_are_kept():
    p = plan(directory([], [group("g1", "Администраторы"), group("g2", "Équipe")]), store(), RULES, directory="hr")
    assert [op.target for op in ops(p, Action.CREATE_GROUP)] == ["Администраторы", "Équipe"]


def test_linked_group_whose_new_name_is_refused_keeps_its_name_and_follows_its_members():
    local = store([local_user(1, "a@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "b@example.com", managed_by="hr", external_id="u2")],
                  [local_group(3, "Eng", 1, managed_by="hr", external_id="g1")])
    p = plan(directory([user("u1", "a@example.com"), user("u2", "b@example.com")], [group("g1", "E" * 30, "u2")]),
             local, RULES, directory="hr")
    assert not ops(p, Action.RENAME_GROUP) and not ops(p, Action.UNLINK_GROUP)
    assert [(op.action, op.user.local_id) for op in p.operations] == [(Action.ADD_MEMBER, 2), (Action.REMOVE_MEMBER, 1)]
