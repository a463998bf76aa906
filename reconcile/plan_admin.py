"""R4 in the planner: the reserved admin group keeps an active member, judged by the group as
the plan leaves it, with the plan's own adds, removals, activations and deactivations counted.

Group planning (`plan_groups`, its members through `plan_members`) asks two things of this
module, in this order:

1. `hold_last_admins`, before any group's members are planned: when the plan would leave
   no member of the admin group active (it deactivates every member that is active now),
   which deactivations to hold. Holding keeps a row active, so every group that lists it
   (not only the admin group) must see it that way: hence first.
2. `admin_removals`, for the admin group's own member changes: which removals to make,
   and when none (the group keeps its current members).

`hold_last_admins_among` asks both of a part of a plan (the staged operations an approval
applies), judged by what that part alone does to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from reconcile.model import Action, Changes, Kind, LocalGroup, LocalUser, Operation, Rejection, RuleSettings
from reconcile.plan_users import IDENTITY_CHANGED, LEFT_SCOPE, UserPlan, is_protected
from reconcile.rules import email_key, is_admin_alias

LAST_ACTIVE_ADMINISTRATOR = "last-active-administrator"  # the reason of a deactivation R4 holds


def active_after(uid: int, local_users: Mapping[int, LocalUser], users: UserPlan) -> bool:
    """Whether local row `uid` is active once the plan has run."""
    if uid in users.activated_local_ids:
        return True
    return local_users[uid].active and uid not in users.deactivated_local_ids


def hold_last_admins(
    name: str,
    current: Collection[int],
    stays: Callable[[int], bool],
    gains: bool,
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
) -> list[Rejection]:
    """R4: hold deactivations the admin group named `name` needs to keep an active member.

    `current` are its members now; `stays(uid)` says whether the plan keeps member `uid` in
    the group should it be active; `gains` whether the plan adds a member (every member it
    adds is active). Nothing is held when the plan adds an active member or leaves one of
    the current members active: in the group, or, when the plan would leave the group
    without one, kept there by `admin_removals` with the other current members. Otherwise
    the plan deactivates every member active now, and it holds the deactivations of those
    it keeps in the group; when it keeps none of them, of all of them (and `admin_removals`
    keeps the members).

    Updates `users`: the held rows lose their deactivation and count as active users of the
    directory (as members of every group that lists them). Returns one rejection per held
    row, sorted by row.
    """
    if gains or any(
        active_after(uid, local_users, users) and (stays(uid) or _kept_as_current(uid, local_users, users))
        for uid in current
    ):
        return []
    active_now = {uid for uid in current if local_users[uid].active}  # the plan deactivates each
    if not active_now:
        return []
    held = {uid for uid in active_now if stays(uid)} or active_now
    users.operations = [
        op
        for op in users.operations
        if not (op.action is Action.DEACTIVATE_USER and op.user is not None and op.user.local_id in held)
    ]
    users.deactivated_local_ids -= held
    # The record each held row is bound to after the plan: a row this plan links is bound to
    # a record it was not bound to before, and the groups that list that record want it.
    bound_to = {row: ext for ext, row in users.final_rows() if row in held}
    rejections = []
    for uid in sorted(held):
        user = local_users[uid]
        external_id = bound_to.get(uid)
        if external_id is not None:
            users.final_inactive.discard(external_id)
        rejections.append(
            Rejection(
                Kind.USER,
                user.email,
                LAST_ACTIVE_ADMINISTRATOR,
                f"{user.email!r} is among the last active members of {name!r};"
                " the deactivation is held",
                external_id=external_id or user.external_id,
            )
        )
    return rejections


def admin_removals(
    name: str,
    current: Collection[int],
    removes: list[int],
    adds: bool,
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
    rules: RuleSettings,
) -> tuple[list[int], list[Rejection]]:
    """The removals from the admin group that R4 allows, and the rejections that say why
    others are not made: never a break-glass account, and none at all when the group would
    be left without an active member (it keeps its current members, but for re-bound rows
    inactive in the store)."""
    rejections = []
    kept = [uid for uid in removes if is_protected(local_users[uid], rules)]
    for uid in kept:
        email = local_users[uid].email
        rejections.append(
            Rejection(
                Kind.MEMBERSHIP,
                f"{name}: {email}",
                "protected",
                f"{email!r} is a protected account ([safety] protected_users);"
                f" no directory removes it from {name!r}",
            )
        )
    removes = [uid for uid in removes if uid not in kept]
    leaving = set(removes)
    if adds or any(active_after(uid, local_users, users) for uid in current if uid not in leaving):
        return removes, rejections
    rejections.append(
        Rejection(
            Kind.GROUP,
            name,
            "admin-group-would-be-empty",
            f"{name!r} must keep at least one active member; its current members are kept",
        )
    )
    return [uid for uid in removes if not _kept_as_current(uid, local_users, users)], rejections


def hold_last_admins_among(
    operations: Sequence[Operation],
    admin: LocalGroup | None,
    local_users: Mapping[int, LocalUser],
    rules: RuleSettings,
    *,
    keep_groups: bool = True,
) -> tuple[tuple[Operation, ...], list[Rejection]]:
    """R4 judged over `operations` alone, as they would change the store that `admin` (the
    reserved group as stored, None before it exists) and `local_users` (its members at
    least) describe. A part of a plan may lack the activation or the add that the whole plan
    let an administrator's deactivation or removal lean on.

    Returns `operations`, in order, without the deactivations and admin-group removals R4
    holds, and the rejections that say why, as `hold_last_admins` and `admin_removals` word
    them. Without the directory's records, a removal from the group counts as the record no
    longer listing the member; so when no active member would stay, every one active now is
    held (where the planner holds those the record still lists).

    A held row stays active, and the planner keeps it in every group that lists it (R4 before
    R7): its removals from other groups are held too, but for those of a row re-bound to a
    new person (`IDENTITY_CHANGED`) or whose record left scope (`LEFT_SCOPE`), which the
    planner makes whether it holds the deactivation or not. A removal does not say whether
    the group still lists the record, so every other one is held (the membership stays until
    a later plan); none adds a rejection. `keep_groups=False` leaves those removals alone,
    where memberships follow the IdP's own group operations (push): then only the
    deactivations and admin-group removals named by the rejections are held.
    """
    if admin is None:
        return tuple(operations), []
    group = admin

    def member(op: Operation, action: Action) -> int | str | None:
        """The row (or, for a row the operations create, its key) `op` adds to or removes
        from the admin group, when it does."""
        if op.action is not action or op.group is None or op.group.local_id != group.id or op.user is None:
            return None
        return op.user.local_id if op.user.local_id is not None else op.user.key

    def rows(action: Action) -> set[int]:
        return {
            op.user.local_id for op in operations if op.action is action and op.user and op.user.local_id is not None
        }

    leaving = {uid for op in operations if isinstance(uid := member(op, Action.REMOVE_MEMBER), int)}
    users = UserPlan(
        operations=list(operations),
        deactivated_local_ids=rows(Action.DEACTIVATE_USER),
        activated_local_ids=rows(Action.ACTIVATE_USER),
        identity_changed_local_ids={
            uid for op in operations if isinstance(uid := member(op, Action.REMOVE_MEMBER), int)
            and op.reason == IDENTITY_CHANGED
        },
    )
    created_active = {
        op.user.key for op in operations if op.action is Action.CREATE_USER and op.user and op.value("active") is True
    }
    gains = any(
        key in created_active
        if isinstance(key, str)
        else key not in group.members and key in local_users and active_after(key, local_users, users)
        for key in (member(op, Action.ADD_MEMBER) for op in operations)
        if key is not None
    )
    deactivations = {
        op.user.local_id: op.reason
        for op in operations
        if op.action is Action.DEACTIVATE_USER and op.user and op.user.local_id is not None
    }
    held = hold_last_admins(group.name, group.members, lambda uid: uid not in leaving, gains, local_users, users)
    made, refused = admin_removals(group.name, group.members, sorted(leaving), gains, local_users, users, rules)
    # Rows now held active keep the groups they would have left as inactive users (R7).
    kept_in = ({uid for uid, why in deactivations.items() if why != LEFT_SCOPE} - users.deactivated_local_ids
               if keep_groups else set())
    applied = [
        op
        for op in users.operations
        if not (
            op.action is Action.REMOVE_MEMBER
            and op.user is not None
            and op.user.local_id in kept_in
            and op.reason != IDENTITY_CHANGED
        )
    ]
    stay = leaving - set(made)
    if not stay:  # a group with no active member now is refused by the whole plan already
        return tuple(applied), held
    return tuple(op for op in applied if member(op, Action.REMOVE_MEMBER) not in stay), held + refused


def _kept_as_current(uid: int, local_users: Mapping[int, LocalUser], users: UserPlan) -> bool:
    """Whether member `uid` stays when the admin group keeps its current members: all do but
    a re-bound row inactive in the store, no active member to keep (the new person it now
    belongs to must not inherit the old one's rights)."""
    return uid not in users.identity_changed_local_ids or local_users[uid].active


def meets_admins(
    changes: Changes, admin: LocalGroup, local_users: Iterable[LocalUser], directory: str, rules: RuleSettings
) -> bool:
    """Whether `changes` name the admin group `admin` (its directory record, the alias) or one
    of its members among `local_users` (as a record, by email key, or as a member of a group
    they carry): what a hold of R4 keeps as the store has it, not as the directory says."""
    members = [u for u in local_users if u.id in admin.members]
    user_ids = {u.external_id for u in members if u.managed_by == directory and u.external_id}
    emails = {email_key(u.email) for u in members}
    group_ids = {admin.external_id} if admin.managed_by == directory and admin.external_id else set()
    named = {u.external_id for u in changes.users} | changes.removed_user_ids
    named |= {m for g in changes.groups for m in g.member_ids}
    named |= {m for d in changes.memberships for m in d.added | d.removed}
    named |= {r.external_id for r in changes.rejections if r.external_id}
    return (
        bool(named & user_ids or named & group_ids or changes.removed_group_ids & group_ids)
        or any(g.external_id in group_ids or (isinstance(g.name, str) and is_admin_alias(g.name, rules))
               for g in changes.groups)
        or any(d.group_external_id in group_ids for d in changes.memberships)
        or any(isinstance(u.email, str) and email_key(u.email) in emails for u in changes.users)
    )
