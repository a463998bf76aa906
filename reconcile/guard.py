"""Safety limits on a plan (DESIGN.md section 5, S2): stage a mass deactivation, don't apply it."""

from __future__ import annotations

from dataclasses import dataclass

from reconcile.model import Action, Plan, SafetyLimits


@dataclass(frozen=True, slots=True)
class Verdict:
    """`halted` plans are staged for an admin; `reason` says which limit tripped."""

    halted: bool
    reason: str | None = None
    deactivations: int = 0


def check(
    plan: Plan,
    *,
    active_users: int,
    reported_users: int,
    limits: SafetyLimits,
    allow_deactivations: bool = False,
) -> Verdict:
    """Whether `plan` may be applied as it is.

    Trips when it deactivates more than `max_deactivations` users, or more than
    `max_deactivation_ratio` of the directory's `active_users` in the store (only from
    `ratio_floor` active users up), and always when the directory reported no users at
    all while the store has active users from it. `allow_deactivations` is an admin's
    approval.
    """
    deactivations = sum(1 for op in plan.operations if op.action is Action.DEACTIVATE_USER)
    active = active_users
    if allow_deactivations:
        return Verdict(False, None, deactivations)
    if reported_users == 0 and active > 0:
        return Verdict(
            True,
            f"the directory reported no users while {active} active users are synced from it",
            deactivations,
        )
    if deactivations > limits.max_deactivations:
        return Verdict(
            True,
            f"{deactivations} deactivations exceed max_deactivations = {limits.max_deactivations}",
            deactivations,
        )
    if active >= limits.ratio_floor and deactivations > limits.max_deactivation_ratio * active:
        return Verdict(
            True,
            f"{deactivations} deactivations are {deactivations / active:.0%} of {active} active"
            f" users, over max_deactivation_ratio = {limits.max_deactivation_ratio:g}",
            deactivations,
        )
    return Verdict(False, None, deactivations)
