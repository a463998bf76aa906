"""plan(): from what a directory says and what the store holds, to an ordered Plan.

Pure and deterministic: no I/O, no clock, no randomness. The same inputs always give the
same operations in the same order, which is what makes a second cycle a provable no-op.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from reconcile.expect import stamp
from reconcile.id_sets import RowsById
from reconcile.merge import touched_groups
from reconcile.model import (
    Action,
    Changes,
    Kind,
    LocalState,
    Operation,
    Operations,
    Plan,
    Ref,
    RuleSettings,
    Section,
    Snapshot,
)
from reconcile.plan_groups import plan_groups
from reconcile.plan_members import MemberAdds, stamp_adds
from reconcile.plan_users import UserCreates, plan_users

# Apply runs operations in this order: links are freed before they are taken, rows exist
# before memberships name them.
# Adds before removes and deactivations, so a plan cut into several transactions never
# commits the admin group empty between them (R4: a swap {A} -> {B} adds B first).
ORDER = (
    Action.UNLINK_GROUP,
    Action.UNLINK_USER,
    Action.UPDATE_USER,
    Action.LINK_USER,
    Action.ACTIVATE_USER,
    Action.CREATE_USER,
    Action.RENAME_GROUP,
    Action.LINK_GROUP,
    Action.CREATE_GROUP,
    Action.ADD_MEMBER,
    Action.REMOVE_MEMBER,
    Action.DEACTIVATE_USER,
    Action.CREATE_INVITE,
    Action.REVOKE_INVITE,
)


def plan(
    source: Snapshot | Changes,
    local: LocalState,
    rules: RuleSettings,
    *,
    directory: str,
    links: Mapping[str, str] | None = None,
) -> Plan:
    """Every operation that brings the store in step with `directory`, and every refusal.

    `source` is a complete `Snapshot`, or `Changes` since the store's last view of the
    directory (planned in proportion to what changed, with the meaning of
    `merge(changes, ...)`). Records the connector could not interpret (its rejections
    with an external id) hold their local counterparts exactly as they are.
    """
    if isinstance(source, Changes):
        external_users, external_groups = source.users, touched_groups(source, local, directory, rules)
        departed_users: frozenset[str] | None = source.removed_user_ids
        departed_groups: frozenset[str] | None = source.removed_group_ids
    else:
        external_users, external_groups = source.users, source.groups
        departed_users = departed_groups = None
    held_users = frozenset(
        r.external_id for r in source.rejections if r.kind is Kind.USER and r.external_id
    )
    held_groups = frozenset(
        r.external_id for r in source.rejections if r.kind is Kind.GROUP and r.external_id
    )
    users_by_id = RowsById(local.users)

    users = plan_users(external_users, local.users, directory, rules, held_users, departed_users)
    groups = plan_groups(
        external_groups,
        local.groups,
        users_by_id,
        users,
        directory,
        rules,
        links or {},
        held_groups,
        departed_groups,
    )
    # Planning groups may hold deactivations (R4): the users' operations are read after it.
    rejections = list(source.rejections) + users.rejections + groups.held + groups.rejections
    operations = users.operations + groups.operations + groups.member_operations
    operations += revoke_invites(local)
    # Creates and additions are kept as the records they are made from (a first cycle's
    # bulk): their sections make each operation when the apply reaches it.
    made = (UserCreates(users.created, directory), MemberAdds(stamp_adds(groups.member_adds, local)))
    return Plan(directory, _ordered(stamp(operations, local), made), tuple(rejections))


def revoke_invites(local: LocalState) -> list[Operation]:
    """R8: while a directory syncs, no invite stays open."""
    return [
        Operation(
            Action.REVOKE_INVITE,
            invite.email,
            invite_id=invite.id,
            values=(("status", "revoked"),),
            old=(("status", invite.status),),
        )
        for invite in local.invites
        if invite.status == "open"
    ]


def plan_disable(local: LocalState, directory: str) -> Plan:
    """R8: turning sync off makes every user and group of `directory` local again."""
    ops = [
        Operation(
            Action.UNLINK_USER,
            u.email,
            user=Ref(local_id=u.id),
            values=(("external_id", None), ("managed_by", None)),
            old=(("external_id", u.external_id), ("managed_by", u.managed_by)),
        )
        for u in local.users
        if u.managed_by == directory
    ]
    ops += [
        Operation(
            Action.UNLINK_GROUP,
            g.name,
            group=Ref(local_id=g.id),
            values=(("external_id", None), ("managed_by", None)),
            old=(("external_id", g.external_id), ("managed_by", g.managed_by)),
        )
        for g in local.groups
        if g.managed_by == directory
    ]
    return Plan(directory, _ordered(stamp(ops, local)))


def _ordered(operations: Iterable[Operation], sections: Iterable[Section] = ()) -> Operations:
    """`operations` and `sections` in `ORDER` of their actions; in the order given within
    one action, a section after the operations."""
    by_action: defaultdict[Action, list[Operation]] = defaultdict(list)
    for op in operations:
        by_action[op.action].append(op)
    made = {section.action: section for section in sections}
    return Operations(part for action in ORDER for part in (tuple(by_action[action]), made.get(action, ())))
