"""Planning memberships: the members each group a directory manages has after the plan
(R7: they follow its record, and inactive users are not members), R4's holds on the admin
group first, and who leaves the groups the plan does not otherwise change.
`reconcile.plan_groups` decides which groups those are, then calls this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field

from reconcile.model import Action, Kind, LocalGroup, LocalUser, Operation, Ref, Rejection, RuleSettings
from reconcile.plan_admin import admin_removals, hold_last_admins
from reconcile.plan_users import IDENTITY_CHANGED, UserPlan, is_protected


@dataclass(slots=True)
class _Managed:
    """A group the directory manages after the plan, and the members it should have."""

    ref: Ref
    name: str
    local: LocalGroup | None
    member_ids: Set[str]


@dataclass(slots=True)
class GroupPlan:
    operations: list[Operation] = field(default_factory=list)
    member_operations: list[Operation] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # deactivations R4 holds (last-active-administrator)
    held: list[Rejection] = field(default_factory=list)


def _is_admin(m: _Managed, admin: LocalGroup | None, rules: RuleSettings) -> bool:
    """Whether `m` is the reserved admin group (one this plan creates has its name)."""
    return m.local is admin if admin is not None else m.name == rules.admin_group


def _hold_last_admins(
    managed: Iterable[_Managed],
    admin: LocalGroup | None,
    settled: Callable[[LocalGroup], bool],
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
    rules: RuleSettings,
) -> list[Rejection]:
    """R4's holds (`plan_admin.hold_last_admins`) for the admin group as this plan leaves it."""
    own = next((m for m in managed if _is_admin(m, admin, rules)), None)
    if own is not None:
        current = own.local.members if own.local is not None else frozenset()
        listed = {ref.local_id for ref in map(users.final_ref.get, own.member_ids) if ref is not None}
        return hold_last_admins(
            own.name,
            current,
            lambda uid: uid in listed or is_protected(local_users[uid], rules),
            any(isinstance(key, str) or key not in current for key in _wanted(own.member_ids, users)),
            local_users,
            users,
        )
    if admin is None:
        return []
    # Without a record to follow it keeps its members, but for those leaving every group (R7)
    # and, unchanged by an incremental read, those whose records left.
    rebound, left = users.identity_changed_local_ids, users.left_local_ids if settled(admin) else set()
    return hold_last_admins(
        admin.name,
        admin.members,
        lambda uid: not (uid in rebound or uid in left) or is_protected(local_users[uid], rules),
        False,
        local_users,
        users,
    )


def _drop(
    g: LocalGroup,
    leaving: Set[int],
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
    out: GroupPlan,
    admin: LocalGroup | None,
    rules: RuleSettings,
) -> list[Operation]:
    """Remove `leaving` from a group whose other members this plan does not change."""
    removes = sorted(leaving)
    if g is admin:
        removes, refused = admin_removals(g.name, g.members, removes, False, local_users, users, rules)
        out.rejections.extend(refused)
    return [_remove(g.name, Ref(local_id=g.id), uid, local_users, users) for uid in removes]


def _wanted(member_ids: Iterable[str], users: UserPlan) -> dict[int | str, tuple[Ref, tuple[tuple[str, object], ...]]]:
    """The members a group listing `member_ids` has after the plan: the active users they
    name, keyed by local row (or by the reference of a row the plan creates)."""
    wanted: dict[int | str, tuple[Ref, tuple[tuple[str, object], ...]]] = {}
    for external_id in sorted(member_ids):
        # A held user (its record refused) counts as it stands in the store: memberships
        # belong to the group's record, which the directory still lists.
        ref = users.final_ref.get(external_id)
        if ref is None or external_id not in users.final_active:
            continue
        key = ref.local_id if ref.local_id is not None else str(ref)
        wanted[key] = (ref, users.final_member[external_id])
    return wanted


def _members(
    m: _Managed,
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
    out: GroupPlan,
    admin: LocalGroup | None,
    rules: RuleSettings,
) -> list[Operation]:
    current = m.local.members if m.local is not None else frozenset()
    if users.seen_everyone:  # an incremental read names only the users that changed
        out.rejections.extend(
            Rejection(
                Kind.MEMBERSHIP,
                f"{m.name}: {external_id}",
                "unknown-member",
                f"group {m.name!r} lists member {external_id!r}, which names no user in scope",
            )
            for external_id in sorted(m.member_ids)
            if external_id not in users.seen
        )
    wanted = _wanted(m.member_ids, users)
    removes = sorted(uid for uid in current if uid not in wanted)
    adds = [item for k, item in wanted.items() if not (isinstance(k, int) and k in current)]

    if _is_admin(m, admin, rules):
        removes, refused = admin_removals(m.name, current, removes, bool(adds), local_users, users, rules)
        out.rejections.extend(refused)
        if not removes and not adds:
            return []

    ops = [_remove(m.name, m.ref, uid, local_users, users) for uid in removes]
    ops.extend(
        Operation(
            Action.ADD_MEMBER,
            m.name,
            group=m.ref,
            user=ref,
            values=values,
        )
        for ref, values in adds
    )
    return ops


def _remove(name: str, group: Ref, uid: int, local_users: Mapping[int, LocalUser], users: UserPlan) -> Operation:
    return Operation(
        Action.REMOVE_MEMBER,
        name,
        group=group,
        user=Ref(local_id=uid),
        old=(("member", local_users[uid].email),),
        reason=IDENTITY_CHANGED if uid in users.identity_changed_local_ids else None,
    )
