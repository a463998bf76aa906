"""What provisioning one user on demand did to them, in words an admin reads (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from reconcile.model import Action, Changes, Plan, Snapshot
from reconcile.rules import email_key


@dataclass(frozen=True, slots=True)
class UserOutcome:
    """What provisioning one user on demand did to them, in words an admin reads."""

    found: bool
    text: str


_DONE_TO_USER = {
    Action.CREATE_USER: "created",
    Action.ACTIVATE_USER: "reactivated",
    Action.DEACTIVATE_USER: "deactivated: the directory reports them disabled or gone",
    Action.LINK_USER: "linked to the existing local user with this email",
    Action.UPDATE_USER: "updated",
}


def user_outcome(key: str, source: Snapshot | Changes, the_plan: Plan) -> UserOutcome:
    """What the plan of a provision-on-demand does to the user asked for (pure)."""
    wanted = email_key(key)
    user = next((u for u in source.users
                 if u.external_id == key or (isinstance(u.email, str) and email_key(u.email) == wanted)), None)
    refused = next((r for r in the_plan.rejections
                    if r.external_id == (user.external_id if user else key) or email_key(r.target) == wanted), None)
    if refused is not None:
        return UserOutcome(True, f"not provisioned: {refused.reason}{f' ({refused.detail})' if refused.detail else ''}")
    if user is None:
        return UserOutcome(False, f"{key}: not found in the directory, or not in the application's scope")
    done = [op.action for op in the_plan.operations if op.action in _DONE_TO_USER and op.user is not None
            and (isinstance(op.target, str) and email_key(op.target) == email_key(str(user.email)))]
    for action in _DONE_TO_USER:  # the most telling first
        if action in done:
            return UserOutcome(True, f"{user.email}: {_DONE_TO_USER[action]}")
    if not user.active:
        return UserOutcome(True, f"{user.email}: disabled in the directory, so not provisioned")
    return UserOutcome(True, f"{user.email}: unchanged (already in step)")
