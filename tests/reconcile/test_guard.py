"""S2: a mass deactivation or a mass removal of memberships is staged, not applied."""

from reconcile.guard import check, may_halt
from reconcile.model import Action, Changes, Operation, Plan, RuleSettings, SafetyLimits
from reconcile.plan import plan

from tests.reconcile.builders import directory, group, local_group, local_user, store, user

LIMITS = SafetyLimits()


def synced(n):
    return store([local_user(i, f"p{i}@example.com", managed_by="hr", external_id=f"u{i}") for i in range(1, n + 1)])


def verdict(local, snap, limits=LIMITS, allow=False):
    p = plan(snap, local, RuleSettings(), directory="hr")
    active = sum(1 for u in local.users if u.managed_by == "hr" and u.active)
    memberships = sum(len(g.members) for g in local.groups if g.managed_by == "hr")
    return check(p, active_users=active, reported_users=len(snap.users), limits=limits,
                 allow_deactivations=allow, managed_memberships=memberships)


def still_there(n, total):
    """The directory still reports the first `n` of `total` synced users."""
    return directory([user(f"u{i}", f"p{i}@example.com") for i in range(1, n + 1)])


def test_empty_snapshot_for_a_directory_with_users_always_halts():
    v = verdict(synced(3), directory([]))
    assert v.halted and "no users" in v.reason


def test_deactivating_more_than_the_ratio_halts():
    v = verdict(synced(200), still_there(159, 200))  # 41 of 200 = 20.5 %
    assert v.halted and "max_deactivation_ratio" in v.reason


def test_deactivating_up_to_the_ratio_applies():
    v = verdict(synced(200), still_there(160, 200))  # 40 of 200 = 20 %
    assert not v.halted and v.deactivations == 40


def test_ratio_applies_to_a_directory_of_ninety_nine_users():
    v = verdict(synced(99), still_there(1, 99))
    assert v.halted and "max_deactivation_ratio" in v.reason


def test_ratio_applies_above_ten_active_users():
    v = verdict(synced(11), still_there(8, 11))  # 3 of 11 = 27 %
    assert v.halted and "max_deactivation_ratio" in v.reason


def test_ratio_is_ignored_up_to_ten_active_users():
    v = verdict(synced(10), still_there(1, 10))
    assert not v.halted and v.deactivations == 9


def test_deactivating_more_than_the_absolute_limit_halts():
    v = verdict(synced(50), still_there(40, 50), SafetyLimits(max_deactivations=5))
    assert v.halted and "max_deactivations" in v.reason


def test_admin_approval_lets_a_halted_plan_through():
    v = verdict(synced(3), directory([]), allow=True)
    assert not v.halted and v.deactivations == 3


def in_one_group(n):
    """`n` synced users, all members of the directory's group Eng."""
    local = synced(n)
    eng = local_group(500, "Eng", *range(1, n + 1), managed_by="hr", external_id="g1")
    return store(list(local.users), [*local.groups, eng])


def eng_keeps(n, total):
    """Every user is still there; Eng keeps only its first `n` members."""
    users = [user(f"u{i}", f"p{i}@example.com") for i in range(1, total + 1)]
    return directory(users, [group("g1", "Eng", *[f"u{i}" for i in range(1, n + 1)])])


def test_removing_more_memberships_than_the_ratio_halts():
    v = verdict(in_one_group(100), eng_keeps(79, 100))  # 21 of 100 memberships
    assert v.halted and v.member_removals == 21
    assert v.reason == ("21 group membership removals are 21% of the directory's 100 managed"
                        " memberships, over max_member_removal_ratio = 0.2")


def test_removing_memberships_up_to_the_ratio_applies():
    v = verdict(in_one_group(100), eng_keeps(80, 100))
    assert not v.halted and v.member_removals == 20


def test_removal_ratio_is_ignored_up_to_ten_managed_memberships():
    v = verdict(in_one_group(10), eng_keeps(2, 10))
    assert not v.halted and v.member_removals == 8


def test_removing_more_memberships_than_the_absolute_limit_halts():
    v = verdict(in_one_group(50), eng_keeps(44, 50), SafetyLimits(max_member_removals=5))
    assert v.halted and "6 group membership removals exceed max_member_removals = 5" == v.reason


def test_without_a_managed_membership_count_only_the_absolute_removal_limit_applies():
    p = plan(eng_keeps(2, 10), in_one_group(10), RuleSettings(), directory="hr")
    v = check(p, active_users=10, reported_users=10, limits=SafetyLimits(member_ratio_floor=0))
    assert not v.halted and v.member_removals == 8


def test_admin_approval_lets_a_mass_removal_through():
    v = verdict(in_one_group(100), eng_keeps(10, 100), allow=True)
    assert not v.halted and v.member_removals == 90


# --- may_halt: when the store must be counted at all -----------------------------------------

STRICTEST = SafetyLimits(max_deactivations=0, max_deactivation_ratio=0, ratio_floor=0, max_member_removals=0,
                         max_member_removal_ratio=0, member_ratio_floor=0)


def _changes(*users, removed=frozenset()):
    return Changes(users=tuple(users), removed_user_ids=frozenset(removed), watermark="w")


def test_a_read_of_changes_that_deactivates_and_removes_nothing_cannot_halt():
    synced_hr = synced(3)
    quiet = plan(_changes(), synced_hr, RuleSettings(), directory="hr")
    renamed = plan(_changes(user("u1", "renamed@example.com")), synced_hr, RuleSettings(), directory="hr")
    assert quiet.operations == () and renamed.operations  # a no-op, and an update
    for p in (quiet, renamed):
        assert not may_halt(p, _changes())
        # reported >= bound >= active whenever no one leaves scope: even the strictest limits pass
        for bound in range(3):
            for active in range(bound + 1):
                assert not check(p, active_users=active, reported_users=bound, limits=STRICTEST,
                                 managed_memberships=bound).halted


def test_the_store_is_counted_for_a_full_read_a_departure_a_deactivation_or_a_removal():
    synced_hr = synced(3)
    assert may_halt(plan(directory([]), synced_hr, RuleSettings(), directory="hr"), directory([]))  # empty read
    gone = _changes(removed={"u1"})
    assert may_halt(plan(gone, synced_hr, RuleSettings(), directory="hr"), gone)
    disabled = _changes(user("u2", "p2@example.com", active=False))
    p = plan(disabled, synced_hr, RuleSettings(), directory="hr")
    assert any(op.action is Action.DEACTIVATE_USER for op in p.operations) and may_halt(p, disabled)
    assert may_halt(Plan("hr", (Operation(Action.REMOVE_MEMBER, "g"),)), _changes())
