"""Planning users: R1 (email key), R7 (deactivate, never delete), R9 (status), section 3 matching."""

from reconcile.model import Action, ExternalUser, LocalInvite, RuleSettings
from reconcile.plan import plan

from tests.reconcile.builders import directory, local_group, local_user, store, user

RULES = RuleSettings()


def actions(p, action):
    return [op for op in p.operations if op.action is action]


def reasons(p):
    return {(r.target, r.reason) for r in p.rejections}


def test_new_directory_user_is_created_as_managed():
    p = plan(directory([user("u1", "ana@example.com", name="Ana")]), store(), RULES, directory="hr")
    [create] = actions(p, Action.CREATE_USER)
    assert create.value("email") == "ana@example.com"
    assert create.value("managed_by") == "hr"
    assert create.value("external_id") == "u1"


def test_user_without_email_is_rejected_not_created():
    p = plan(directory([user("u1", "")]), store(), RULES, directory="hr")
    assert not actions(p, Action.CREATE_USER)
    assert ("u1", "missing-email") in reasons(p)


def test_invalid_email_is_rejected():
    p = plan(directory([user("u1", "ana@")]), store(), RULES, directory="hr")
    assert [r.reason for r in p.rejections] == ["invalid-email"]
    assert p.is_empty


def test_homoglyph_email_is_rejected():
    p = plan(directory([user("u1", "аna@example.com")]), store(), RULES, directory="hr")  # Cyrillic а
    assert [r.reason for r in p.rejections] == ["invalid-email"]


def test_emails_differing_only_in_case_first_keeps_it_other_rejected():
    p = plan(directory([user("u1", "Ana@Example.com"), user("u2", "ana@example.com")]), store(), RULES, directory="hr")
    [create] = actions(p, Action.CREATE_USER)
    assert create.value("external_id") == "u1"
    assert ("ana@example.com", "duplicate-email") in reasons(p)


def test_bound_user_keeps_its_email_against_a_later_case_variant():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")])
    p = plan(directory([user("u2", "ANA@example.com"), user("u1", "ana@example.com")]), local, RULES, directory="hr")
    assert p.is_empty
    assert ("ANA@example.com", "duplicate-email") in reasons(p)


def test_first_sight_matches_local_user_by_email_case_insensitively_and_links():
    local = store([local_user(1, "ana@example.com")])
    p = plan(directory([user("u1", " ANA@example.com ")]), local, RULES, directory="hr")
    [link] = actions(p, Action.LINK_USER)
    assert link.user.local_id == 1
    assert dict(link.values) == {"external_id": "u1", "managed_by": "hr"}
    assert not actions(p, Action.CREATE_USER)


def test_user_managed_by_other_directory_is_not_taken_over():
    local = store([local_user(1, "ana@example.com", managed_by="okta", external_id="x")])
    p = plan(directory([user("u1", "ana@example.com")]), local, RULES, directory="hr")
    assert p.is_empty
    assert ("ana@example.com", "owned-by-other-directory") in reasons(p)


def test_email_rename_in_directory_updates_the_same_record():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")])
    p = plan(directory([user("u1", "ana.diaz@example.com")]), local, RULES, directory="hr")
    [update] = p.operations
    assert update.action is Action.UPDATE_USER
    assert update.user.local_id == 1
    assert update.value("email") == "ana.diaz@example.com"


def test_email_swap_between_two_users_plans_two_updates():
    local = store([
        local_user(1, "a@example.com", managed_by="hr", external_id="u1"),
        local_user(2, "b@example.com", managed_by="hr", external_id="u2"),
    ])
    p = plan(directory([user("u1", "b@example.com"), user("u2", "a@example.com")]), local, RULES, directory="hr")
    assert [op.action for op in p.operations] == [Action.UPDATE_USER, Action.UPDATE_USER]
    assert not p.rejections


def test_rename_onto_an_unmanaged_users_email_is_rejected_and_held():
    local = store([
        local_user(1, "a@example.com", managed_by="hr", external_id="u1"),
        local_user(2, "b@example.com"),
    ])
    p = plan(directory([user("u1", "b@example.com")]), local, RULES, directory="hr")
    assert p.is_empty
    assert ("b@example.com", "email-taken") in reasons(p)


def test_user_leaving_scope_is_deactivated_not_deleted():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")])
    p = plan(directory([]), local, RULES, directory="hr")
    [op] = p.operations
    assert op.action is Action.DEACTIVATE_USER
    assert op.user.local_id == 1


def test_disabled_user_is_deactivated_and_loses_managed_group_membership():
    local = store(
        [local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
         local_user(2, "bo@example.com", managed_by="hr", external_id="u2")],
        [local_group(10, "Eng", 1, 2, managed_by="hr", external_id="g1")],
    )
    snap = directory([user("u1", "ana@example.com", active=False), user("u2", "bo@example.com")],
                     [group_("g1", "Eng", "u1", "u2")])
    p = plan(snap, local, RULES, directory="hr")
    assert [op.action for op in p.operations] == [Action.REMOVE_MEMBER, Action.DEACTIVATE_USER]


def test_returning_user_is_reactivated_on_the_same_record():
    local = store([local_user(1, "ana@example.com", active=False, managed_by="hr", external_id="u1")])
    p = plan(directory([user("u1", "ana@example.com")]), local, RULES, directory="hr")
    [op] = p.operations
    assert op.action is Action.ACTIVATE_USER and op.user.local_id == 1


def test_disabled_user_seen_first_is_not_created():
    p = plan(directory([user("u1", "ana@example.com", active=False)]), store(), RULES, directory="hr")
    assert p.is_empty


def test_record_the_connector_could_not_read_holds_its_local_twin():
    from reconcile.model import Kind, Rejection

    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")])
    snap = directory([], rejections=[Rejection(Kind.USER, "u1", "unknown-status", "status 'WEIRD'", external_id="u1")])
    p = plan(snap, local, RULES, directory="hr")
    assert p.is_empty  # not deactivated
    assert ("u1", "unknown-status") in reasons(p)


def test_one_mb_display_name_is_rejected():
    p = plan(directory([user("u1", "ana@example.com", name="x" * 1_000_000)]), store(), RULES, directory="hr")
    assert [r.reason for r in p.rejections] == ["field-too-long"]
    assert p.is_empty


def test_control_characters_in_a_name_are_rejected():
    p = plan(directory([user("u1", "ana@example.com", name="Ana\u202eecilA")]), store(), RULES, directory="hr")
    assert [r.reason for r in p.rejections] == ["control-characters"]


def test_unicode_names_are_kept():
    p = plan(directory([user("u1", "eva@example.com", name="Eva Novák — 诺瓦克")]), store(), RULES, directory="hr")
    [create] = p.operations
    assert create.value("display_name") == "Eva Novák — 诺瓦克"


def test_duplicate_external_ids_keep_the_first_record():
    p = plan(directory([user("u1", "a@example.com"), user("u1", "b@example.com")]), store(), RULES, directory="hr")
    [create] = p.operations
    assert create.value("email") == "a@example.com"
    assert ("b@example.com", "duplicate-id") in reasons(p)


def test_user_recreated_in_directory_with_same_email_rebinds_the_same_record():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="old")])
    p = plan(directory([user("new", "ana@example.com")]), local, RULES, directory="hr")
    [link] = p.operations
    assert link.action is Action.LINK_USER and link.user.local_id == 1
    assert link.value("external_id") == "new"


def test_open_invites_are_revoked_by_a_syncing_directory():
    local = store(invites=[LocalInvite(5, "x@example.com", "open"), LocalInvite(6, "y@example.com", "revoked")])
    p = plan(directory([]), local, RULES, directory="hr")
    [revoke] = p.operations
    assert revoke.action is Action.REVOKE_INVITE and revoke.invite_id == 5


def test_plan_is_deterministic():
    snap = directory([user(f"u{i}", f"p{i}@example.com") for i in range(50)],
                     [group_("g1", "Eng", *[f"u{i}" for i in range(0, 50, 3)])])
    assert plan(snap, store(), RULES, directory="hr") == plan(snap, store(), RULES, directory="hr")


def group_(external_id, name, *members):
    from tests.reconcile.builders import group

    return group(external_id, name, *members)


def test_a_deactivation_says_whether_the_directory_suspended_or_disabled_the_user():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com", managed_by="hr", external_id="u2"),
                   local_user(3, "cy@example.com", managed_by="hr", external_id="u3")], [])
    snap = directory([ExternalUser("u1", "ana@example.com", active=False, suspended=True),
                      ExternalUser("u2", "bo@example.com", active=False)], [])

    p = plan(snap, local, RULES, directory="hr")

    reasons = {op.target: op.reason for op in p.operations if op.action is Action.DEACTIVATE_USER}
    assert reasons == {"ana@example.com": "suspended", "bo@example.com": "disabled-in-idp",
                       "cy@example.com": "left-scope"}


def test_a_creates_values_behave_as_the_pairs_they_stand_for():
    import pickle

    from store.staged import operation_from_json, operation_json

    p = plan(directory([user("u1", "ana@example.com", name="Ana")]), store(), RULES, directory="hr")
    [create] = actions(p, Action.CREATE_USER)
    pairs = tuple(create.values)
    assert [name for name, _ in pairs] == sorted(name for name, _ in pairs)
    assert ("email", "ana@example.com") in pairs and ("managed_by", "hr") in pairs and ("active", True) in pairs
    assert create.values == pairs and pairs == create.values and hash(create.values) == hash(pairs)
    assert create.values[0] == pairs[0] and len(create.values) == len(pairs)
    assert dict(create.values) == dict(pairs)
    assert operation_from_json(operation_json(create)) == create
    assert pickle.loads(pickle.dumps(create)) == create
