"""S2: a mass deactivation is staged, not applied."""

from reconcile.guard import check
from reconcile.model import SafetyLimits
from reconcile.plan import plan
from reconcile.model import RuleSettings

from tests.reconcile.builders import directory, local_user, store, user

LIMITS = SafetyLimits(max_deactivations=500, max_deactivation_ratio=0.2, ratio_floor=100)


def synced(n):
    return store([local_user(i, f"p{i}@example.com", managed_by="hr", external_id=f"u{i}") for i in range(1, n + 1)])


def verdict(local, snap, limits=LIMITS, allow=False):
    p = plan(snap, local, RuleSettings(), directory="hr")
    active = sum(1 for u in local.users if u.managed_by == "hr" and u.active)
    return check(p, active_users=active, reported_users=len(snap.users), limits=limits, allow_deactivations=allow)


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


def test_ratio_is_ignored_below_one_hundred_users():
    v = verdict(synced(99), still_there(10, 99))
    assert not v.halted


def test_deactivating_more_than_the_absolute_limit_halts():
    v = verdict(synced(50), still_there(40, 50), SafetyLimits(max_deactivations=5))
    assert v.halted and "max_deactivations" in v.reason


def test_admin_approval_lets_a_halted_plan_through():
    v = verdict(synced(3), directory([]), allow=True)
    assert not v.halted and v.deactivations == 3
