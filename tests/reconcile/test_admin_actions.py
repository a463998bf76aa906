"""Local admin actions obey R4, R5 and R8."""

import pytest

from reconcile import admin
from reconcile.model import Action, LocalInvite, RuleSettings

from tests.reconcile.builders import local_group, local_user, store

RULES = RuleSettings()


def refused(fn, *args):
    with pytest.raises(admin.Refused) as info:
        fn(*args)
    return info.value.reason


def test_managed_user_cannot_be_deactivated_locally():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")])
    assert refused(admin.deactivate_user, local, "ana@example.com", RULES) == "managed"


def test_managed_user_cannot_be_activated_locally():
    local = store([local_user(1, "ana@example.com", active=False, managed_by="hr", external_id="u1")])
    assert refused(admin.activate_user, local, "ana@example.com") == "managed"


def test_managed_group_members_cannot_be_changed_locally():
    local = store([local_user(1, "ana@example.com")], [local_group(2, "Eng", managed_by="hr", external_id="g1")])
    assert refused(admin.add_member, local, "Eng", "ana@example.com", RULES) == "managed"


def test_local_user_can_join_a_local_group():
    local = store([local_user(1, "ana@example.com")], [local_group(2, "Eng")])
    [op] = admin.add_member(local, "eng", "ANA@example.com", RULES).operations
    assert op.action is Action.ADD_MEMBER and op.group.local_id == 2 and op.user.local_id == 1


def test_last_active_admin_cannot_be_removed():
    local = store([local_user(1, "ana@example.com")], [local_group(9, "Administrators", 1, reserved=True)])
    assert refused(admin.remove_member, local, "Administrators", "ana@example.com", RULES) == "last-active-administrator"


def test_last_active_admin_cannot_be_deactivated():
    local = store([local_user(1, "ana@example.com")], [local_group(9, "Administrators", 1, reserved=True)])
    assert refused(admin.deactivate_user, local, "ana@example.com", RULES) == "last-active-administrator"


def test_invite_is_refused_while_a_directory_syncs():
    assert refused(admin.invite, store(), "new@example.com", ["hr"]) == "sync-enabled"


def test_invite_is_created_when_no_directory_syncs():
    [op] = admin.invite(store(), "new@example.com", []).operations
    assert op.action is Action.CREATE_INVITE and op.value("email") == "new@example.com"


def test_second_open_invite_for_one_email_is_refused():
    local = store(invites=[LocalInvite(1, "new@example.com", "open")])
    assert refused(admin.invite, local, "NEW@example.com", []) == "exists"


def test_local_group_of_25_characters_is_refused():
    assert refused(admin.add_group, store(), "y" * 25, RULES) == "name-too-long"


def test_local_group_named_administrators_is_refused():
    assert refused(admin.add_group, store(admin=False), "Administrators", RULES) == "reserved-name"


def test_adding_to_a_missing_administrators_group_creates_it_reserved():
    local = store([local_user(1, "ana@example.com")], admin=False)
    create, add = admin.add_member(local, "Administrators", "ana@example.com", RULES).operations
    assert create.action is Action.CREATE_GROUP and create.value("reserved") is True
    assert add.group == create.group


def test_add_user_with_an_existing_email_is_refused():
    local = store([local_user(1, "ana@example.com")])
    assert refused(admin.add_user, local, "Ana@Example.com", None, RULES) == "exists"
