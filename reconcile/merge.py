"""Turning an incremental read into the complete picture `plan` works on.

The store holds the directory's last applied state: the users and groups bound to it.
Projecting that state back into directory records and laying `Changes` over it gives the
`Snapshot` a full read would have returned, so full and incremental cycles share one
planning path and cannot drift apart.
"""

from __future__ import annotations

from reconcile.model import (
    Changes,
    ExternalGroup,
    ExternalUser,
    LocalState,
    RuleSettings,
    Snapshot,
)


def project(local: LocalState, directory: str, rules: RuleSettings) -> Snapshot:
    """The store's view of `directory` as a snapshot: its bound users and groups."""
    users = tuple(
        ExternalUser(
            external_id=u.external_id,
            email=u.email,
            given_name=u.given_name,
            family_name=u.family_name,
            display_name=u.display_name,
            active=u.active,
        )
        for u in local.users
        if u.managed_by == directory and u.external_id is not None
    )
    external_of = {
        u.id: u.external_id
        for u in local.users
        if u.managed_by == directory and u.external_id is not None
    }
    groups = tuple(
        ExternalGroup(
            external_id=g.external_id,
            # The admin group is bound through its alias (R3): that is the name the
            # directory knows it by.
            name=rules.admin_alias if g.reserved else g.name,
            member_ids=frozenset(external_of[m] for m in g.members if m in external_of),
        )
        for g in local.groups
        if g.managed_by == directory and g.external_id is not None
    )
    return Snapshot(users=users, groups=groups)


def merge(changes: Changes, local: LocalState, directory: str, rules: RuleSettings) -> Snapshot:
    """The snapshot a full read would give: the store's projection with `changes` applied."""
    base = project(local, directory, rules)
    users = {u.external_id: u for u in base.users}
    for user in changes.users:
        users[user.external_id] = user
    for external_id in changes.removed_user_ids:
        users.pop(external_id, None)

    groups = {g.external_id: g for g in base.groups}
    for group in changes.groups:
        previous = groups.get(group.external_id)
        complete = group.external_id in changes.members_complete or previous is None
        members = group.member_ids if complete else previous.member_ids  # type: ignore[union-attr]
        groups[group.external_id] = ExternalGroup(group.external_id, group.name, members)
    for delta in changes.memberships:
        current = groups.get(delta.group_external_id)
        if current is None:
            continue  # the group left scope or was never read: nothing to change
        members = (current.member_ids - delta.removed) | delta.added
        groups[delta.group_external_id] = ExternalGroup(current.external_id, current.name, members)
    for external_id in changes.removed_group_ids:
        groups.pop(external_id, None)

    return Snapshot(
        users=tuple(users.values()),
        groups=tuple(groups.values()),
        rejections=changes.rejections,
        watermark=changes.watermark,
    )
