"""Safety limits on a plan (DESIGN.md section 5, S2): stage a mass deactivation or a mass
removal of memberships, don't apply it."""

from __future__ import annotations

from dataclasses import dataclass

from reconcile.model import Action, Changes, Plan, SafetyLimits, Snapshot, action_counts


@dataclass(frozen=True, slots=True)
class Verdict:
    """`halted` plans are staged for an admin; `reason` says which limit tripped."""

    halted: bool
    reason: str | None = None
    deactivations: int = 0
    member_removals: int = 0


def may_halt(plan: Plan, source: Snapshot | Changes) -> bool:
    """Whether `check` could halt `plan` at all, before the store is counted. Only
    deactivations and removals count against the limits, and only a read that may leave no
    user reported trips the empty-read test: a full read, or changes that take users out of
    scope (changes that take no one out report at least the users bound already, so none
    is reported only where none is active). A no-op cycle needs no count of the store."""
    if isinstance(source, Snapshot) or source.removed_user_ids:
        return True
    counts = action_counts(plan.operations)
    return bool(counts[Action.DEACTIVATE_USER] or counts[Action.REMOVE_MEMBER])


def check(
    plan: Plan,
    *,
    active_users: int,
    reported_users: int,
    limits: SafetyLimits,
    allow_deactivations: bool = False,
    managed_memberships: int | None = None,
) -> Verdict:
    """Whether `plan` may be applied as it is.

    Trips when it deactivates more than `max_deactivations` users, or more than
    `max_deactivation_ratio` of the directory's `active_users` in the store (for
    directories with more than `ratio_floor` active users); when it removes more than
    `max_member_removals` memberships, or more than `max_member_removal_ratio` of the
    `managed_memberships` (the memberships of the directory's groups in the store, before
    the plan; for more than `member_ratio_floor` of them); and always when the directory
    reported no users at all while the store has active users from it.
    `allow_deactivations` is an admin's approval of this plan.
    """
    counts = action_counts(plan.operations)
    deactivations, removals = counts[Action.DEACTIVATE_USER], counts[Action.REMOVE_MEMBER]

    def halt(reason: str) -> Verdict:
        return Verdict(True, reason, deactivations, removals)

    active = active_users
    if allow_deactivations:
        return Verdict(False, None, deactivations, removals)
    if reported_users == 0 and active > 0:
        return halt(f"the directory reported no users while {active} active users are synced from it")
    if deactivations > limits.max_deactivations:
        return halt(f"{deactivations} deactivations exceed max_deactivations = {limits.max_deactivations}")
    if active > limits.ratio_floor and deactivations > limits.max_deactivation_ratio * active:
        return halt(
            f"{deactivations} deactivations are {deactivations / active:.0%} of {active} active"
            f" users, over max_deactivation_ratio = {limits.max_deactivation_ratio:g}"
        )
    if removals > limits.max_member_removals:
        return halt(
            f"{removals} group membership removals exceed max_member_removals = {limits.max_member_removals}"
        )
    managed = managed_memberships
    if managed is not None and managed > limits.member_ratio_floor and removals > limits.max_member_removal_ratio * managed:
        return halt(
            f"{removals} group membership removals are {removals / managed:.0%} of the directory's"
            f" {managed} managed memberships, over max_member_removal_ratio = {limits.max_member_removal_ratio:g}"
        )
    return Verdict(False, None, deactivations, removals)
