"""Reading an incremental `Changes` against the store's last view of the directory.

The store holds the directory's last applied state: the users and groups bound to it.
`merge` lays `Changes` over that projection and gives the `Snapshot` a full read would
have returned (the meaning of `Changes`, and what tests compare incremental plans with).
`touched_groups` does the same for only the groups a change touches, so planning an
incremental cycle costs in proportion to what changed.
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
    return Snapshot(users=users, groups=tuple(_bound_groups(local, directory, rules).values()))


def merge(changes: Changes, local: LocalState, directory: str, rules: RuleSettings) -> Snapshot:
    """The snapshot a full read would give: the store's projection with `changes` applied."""
    base = project(local, directory, rules)
    users = {u.external_id: u for u in base.users}
    for user in changes.users:
        users[user.external_id] = user
    for external_id in changes.removed_user_ids:
        users.pop(external_id, None)
    groups = {g.external_id: g for g in base.groups}
    groups.update(_changed_groups(changes, groups))
    for external_id in changes.removed_group_ids:
        groups.pop(external_id, None)
    return Snapshot(
        users=tuple(users.values()),
        groups=tuple(groups.values()),
        rejections=changes.rejections,
        watermark=changes.watermark,
    )


def touched_groups(
    changes: Changes, local: LocalState, directory: str, rules: RuleSettings
) -> tuple[ExternalGroup, ...]:
    """The complete current record of every group `changes` touches (members merged):
    what `merge` gives for those groups, without projecting the others."""
    touched = {g.external_id for g in changes.groups} | {d.group_external_id for d in changes.memberships}
    if not touched:
        return ()
    return tuple(_changed_groups(changes, _bound_groups(local, directory, rules, only=touched)).values())


def _bound_groups(
    local: LocalState, directory: str, rules: RuleSettings, only: set[str] | None = None
) -> dict[str, ExternalGroup]:
    """The groups bound to `directory` (those of `only`, when given) as the directory last
    reported them: by external id, with their bound members' external ids."""
    bound = [
        g for g in local.groups
        if g.managed_by == directory and g.external_id is not None and (only is None or g.external_id in only)
    ]
    wanted = {m for g in bound for m in g.members}
    external_of = {
        u.id: u.external_id
        for u in local.users
        if u.id in wanted and u.managed_by == directory and u.external_id is not None
    }
    return {
        g.external_id: ExternalGroup(
            g.external_id,
            # The admin group is bound through its alias (R3): that is the name the
            # directory knows it by.
            rules.admin_alias if g.reserved else g.name,
            frozenset(external_of[m] for m in g.members if m in external_of),
        )
        for g in bound
        if g.external_id is not None
    }


def _changed_groups(changes: Changes, known: dict[str, ExternalGroup]) -> dict[str, ExternalGroup]:
    """Every group `changes` names, as it is now: its new record with its complete
    members (or the members `known` had), then its membership deltas; groups that left
    scope are left out. The one place that says how changes merge."""
    result: dict[str, ExternalGroup] = {}
    for group in changes.groups:
        previous = known.get(group.external_id)
        complete = group.external_id in changes.members_complete or previous is None
        members = group.member_ids if complete else previous.member_ids  # type: ignore[union-attr]
        result[group.external_id] = ExternalGroup(group.external_id, group.name, members)
    for delta in changes.memberships:
        current = result.get(delta.group_external_id) or known.get(delta.group_external_id)
        if current is None:
            continue  # the group left scope or was never read: its record comes with a full read
        members = (current.member_ids - delta.removed) | delta.added
        result[delta.group_external_id] = ExternalGroup(current.external_id, current.name, members)
    for external_id in changes.removed_group_ids:
        result.pop(external_id, None)
    return result


def reported_users(source: Snapshot | Changes, local: LocalState, directory: str, bound_total: int) -> int:
    """How many users the directory reports in scope after `source` (for the S2 guard).

    `bound_total` is how many users the store has bound to `directory`; `local` needs to
    hold at least the bound users `source` names.
    """
    if isinstance(source, Snapshot):
        return len(source.users)
    bound = {u.external_id for u in local.users if u.managed_by == directory and u.external_id}
    changed = {u.external_id for u in source.users}
    return bound_total - len(bound & source.removed_user_ids) + len(changed - bound - source.removed_user_ids)
