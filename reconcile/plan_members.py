"""Planning memberships: the members each group a directory manages has after the plan
(R7: they follow its record, and inactive users are not members), R4's holds on the admin
group first, and who leaves the groups the plan does not otherwise change.
`reconcile.plan_groups` decides which groups those are, then calls this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field, replace
from itertools import accumulate

from reconcile.model import (
    Action,
    Kind,
    LocalGroup,
    LocalState,
    LocalUser,
    Operation,
    Pairs,
    Ref,
    Rejection,
    RuleSettings,
    Section,
    locate,
)
from reconcile.expect import bindings_of, expected
from reconcile.plan_admin import admin_removals, hold_last_admins
from reconcile.plan_users import (
    IDENTITY_CHANGED,
    CleanUser,
    Member,
    UserPlan,
    is_protected,
    member_of,
)


@dataclass(slots=True)
class _Managed:
    """A group the directory manages after the plan, and the members it should have."""

    ref: Ref
    name: str
    local: LocalGroup | None
    member_ids: Set[str]


@dataclass(frozen=True, slots=True)
class GroupAdds:
    """The members one group gains: `ADD_MEMBER` operations, made by `MemberAdds`."""

    name: str
    group: Ref
    members: tuple[Member, ...]
    expect: Pairs = ()

    def operation(self, member: Member) -> Operation:
        ref, values = member_of(member)
        return Operation(Action.ADD_MEMBER, self.name, group=self.group, user=ref, values=values, expect=self.expect)


def stamp_adds(adds: Iterable[GroupAdds], local: LocalState) -> list[GroupAdds]:
    """`adds` with `expect` set from the bindings of their groups in `local`, as
    `reconcile.expect.stamp` sets it on operations."""
    groups = bindings_of(local.groups)
    out = []
    for block in adds:
        expect = None if block.expect else expected(groups, block.group)
        out.append(block if expect is None else replace(block, expect=expect))
    return out


class MemberAdds(Section):
    """The `ADD_MEMBER` operations of groups' additions, group by group, made when
    reached: a member kept in a group's additions is one pointer, where its operation is
    about 100 bytes."""

    __slots__ = ("groups", "_ends")
    action = Action.ADD_MEMBER

    def __init__(self, groups: Iterable[GroupAdds]) -> None:
        self.groups = tuple(groups)
        self._ends = tuple(accumulate(len(g.members) for g in self.groups))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[Operation]:
        return (g.operation(member) for g in self.groups for member in g.members)

    def _at(self, index: int) -> Operation:
        n, at = locate(self._ends, index)
        return self.groups[n].operation(self.groups[n].members[at])


@dataclass(slots=True)
class GroupPlan:
    operations: list[Operation] = field(default_factory=list)
    # removals (additions are `member_adds`)
    member_operations: list[Operation] = field(default_factory=list)
    member_adds: list[GroupAdds] = field(default_factory=list)
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
        listed = {row for row in map(users.final_row, own.member_ids) if row is not None}
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


def _wanted(member_ids: Iterable[str], users: UserPlan) -> dict[int | str, Member]:
    """The members a group listing `member_ids` has after the plan: the active users they
    name, keyed by local row (or, for a row the plan creates, by its external id)."""
    wanted: dict[int | str, Member] = {}
    for external_id in sorted(member_ids):
        # A held user (its record refused) counts as it stands in the store: memberships
        # belong to the group's record, which the directory still lists.
        member = users.final_member.get(external_id)
        # Inactive users are not members (R7); a row the plan creates is active.
        if member is None or external_id in users.final_inactive:
            continue
        # A row the plan creates has no local id yet: its external id names it.
        key = external_id if isinstance(member, CleanUser) else member.id
        wanted[key] = member
    return wanted


def _members(
    m: _Managed,
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
    out: GroupPlan,
    admin: LocalGroup | None,
    rules: RuleSettings,
) -> list[Operation]:
    """The removals that bring `m` to the members it should have; its additions go to
    `out.member_adds`."""
    # One group's members as a hash set while it is planned: `LocalIds` keeps them compact
    # for the whole plan, and each lookup below would be a search of it.
    current = set(m.local.members) if m.local is not None else set()
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
    adds = tuple(member for k, member in wanted.items() if not (isinstance(k, int) and k in current))

    if _is_admin(m, admin, rules):
        removes, refused = admin_removals(m.name, current, removes, bool(adds), local_users, users, rules)
        out.rejections.extend(refused)
        if not removes and not adds:
            return []

    if adds:
        out.member_adds.append(GroupAdds(m.name, m.ref, adds))
    return [_remove(m.name, m.ref, uid, local_users, users) for uid in removes]


def _remove(name: str, group: Ref, uid: int, local_users: Mapping[int, LocalUser], users: UserPlan) -> Operation:
    return Operation(
        Action.REMOVE_MEMBER,
        name,
        group=group,
        user=Ref(local_id=uid),
        old=(("member", local_users[uid].email),),
        reason=IDENTITY_CHANGED if uid in users.identity_changed_local_ids else None,
    )
