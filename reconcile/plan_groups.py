"""Planning groups and memberships: link before create, reserved admin group (R2-R7).

This module matches the directory's groups to local ones and plans their links, renames,
creations and unlinks; the members each group has after the plan are planned in
`reconcile.plan_members`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconcile.model import (
    Action,
    ExternalGroup,
    Kind,
    LocalGroup,
    LocalUser,
    Operation,
    Ref,
    Rejection,
    RuleSettings,
)
from reconcile.plan_members import GroupPlan, _drop, _hold_last_admins, _Managed, _members
from reconcile.plan_users import UserPlan
from reconcile.rules import Violation, check_group_name, is_admin_alias, is_admin_group, name_key


def find_admin_group(groups: Iterable[LocalGroup], rules: RuleSettings) -> LocalGroup | None:
    """The reserved admin group (R3), by its flag or, failing that, its name."""
    groups = list(groups)
    return next((g for g in groups if g.reserved), None) or next(
        (g for g in groups if is_admin_group(g.name, rules)), None
    )


def admin_group_key(rules: RuleSettings) -> str:
    """The `Ref.key` of a locally created admin group."""
    return "local:" + name_key(rules.admin_group)


def plan_groups(
    groups: Iterable[ExternalGroup],
    local_groups: Iterable[LocalGroup],
    local_users: Mapping[int, LocalUser],
    users: UserPlan,
    directory: str,
    rules: RuleSettings,
    links: Mapping[str, str],
    held_external_ids: frozenset[str],
    departed: frozenset[str] | None = None,
) -> GroupPlan:
    """Decide every group and membership operation for one directory.

    `departed` works as in `plan_users`: None means `groups` is the complete list;
    otherwise `groups` changed, `departed` left, and every other bound group stays.
    """
    out = GroupPlan()
    local = list(local_groups)
    admin = find_admin_group(local, rules)
    bound = {g.external_id: g for g in local if g.managed_by == directory and g.external_id}
    by_key = {name_key(g.name): g for g in local}
    held_local: set[int] = set()
    kept: list[_Managed] = []

    def refuse_name(group: ExternalGroup) -> None:
        """A bound group keeps its name (and link); its members still follow the record."""
        own = bound.get(group.external_id)
        if own is not None:
            held_local.add(own.id)
            kept.append(_Managed(Ref(local_id=own.id), own.name, own, group.member_ids))

    # 1. Validate. A bound group whose name is refused keeps it; one whose record could
    #    not be read at all is held exactly as it is.
    valid: list[tuple[ExternalGroup, str]] = []
    seen: set[str] = set()
    for group in groups:
        if group.external_id in seen:
            out.rejections.append(_reject(group, "duplicate-id", "another group has this id"))
            continue
        seen.add(group.external_id)
        checked = (
            Violation("held", "")
            if group.external_id in held_external_ids
            else check_group_name(group.name, rules)
        )
        if isinstance(checked, Violation):
            if checked.reason == "held":
                if group.external_id in bound:
                    held_local.add(bound[group.external_id].id)
            else:
                out.rejections.append(_reject(group, checked.reason, checked.detail))
                refuse_name(group)
            continue
        valid.append((group, checked))
    for external_id in held_external_ids - seen:
        if external_id in bound:
            held_local.add(bound[external_id].id)
    if departed is not None:
        seen |= {ext for ext in bound if ext not in departed}  # unchanged: still there

    # 2. One directory group per local name; the alias claims the admin group's name.
    def wanted_name(group: ExternalGroup, name: str) -> str:
        if is_admin_alias(name, rules):
            return rules.admin_group
        return links.get(group.external_id, name)

    def keeps_own(item: tuple[ExternalGroup, str]) -> bool:
        own = bound.get(item[0].external_id)
        return own is not None and name_key(own.name) == name_key(wanted_name(*item))

    claims: dict[str, ExternalGroup] = {}
    for group, name in sorted(valid, key=lambda item: not keeps_own(item)):
        key = name_key(wanted_name(group, name))
        if key in claims:
            out.rejections.append(
                _reject(group, "duplicate-name", f"directory group {claims[key].external_id} has this name")
            )
            refuse_name(group)
            continue
        claims[key] = group
    claimed = {g.external_id for g in claims.values()}

    final_key_of = {g.id: name_key(g.name) for g in local}
    for key, group in claims.items():
        own = bound.get(group.external_id)
        if own is not None:
            final_key_of[own.id] = key

    managed: list[_Managed] = []
    admin_created = False
    rebound: set[int] = set()
    unlinked: set[int] = set()
    creates: list[Operation] = []

    def unlink(g: LocalGroup) -> None:
        if g.id not in unlinked:
            unlinked.add(g.id)
            out.operations.append(_unlink(g))

    for group, name in ((g, n) for g, n in valid if g.external_id in claimed):
        own = bound.get(group.external_id)
        if is_admin_alias(name, rules):
            if own is not None and own is not admin:
                unlink(own)  # the directory renamed a plain group into the alias
            if admin is None:
                creates.append(_create(rules.admin_group, group.external_id, directory, reserved=True))
                admin_created = True
                managed.append(_Managed(Ref(key=group.external_id), rules.admin_group, None, group.member_ids))
                continue
            if admin.managed_by not in (None, directory):
                out.rejections.append(_owned(group, admin))
                continue
            if admin.managed_by == directory and admin.external_id != group.external_id and (
                admin.external_id in seen or admin.id in held_local
            ):
                out.rejections.append(
                    _reject(
                        group, "duplicate-name", f"directory group {admin.external_id} already maps onto {admin.name!r}"
                    )
                )
                continue
            if admin.external_id != group.external_id or admin.managed_by != directory:
                out.operations.append(_link(admin, group.external_id, directory))
                rebound.add(admin.id)
            managed.append(_Managed(Ref(local_id=admin.id), admin.name, admin, group.member_ids))
            continue

        target_name = wanted_name(group, name)
        key = name_key(target_name)
        if own is not None and own is admin:
            unlink(own)  # the alias was renamed: the admin group goes back to local
            own = None
        if own is not None:
            holder = by_key.get(key)
            if holder is not None and holder.id != own.id and final_key_of[holder.id] == key:
                out.rejections.append(_reject(group, "name-taken", f"a local group is already named {holder.name!r}"))
                refuse_name(group)
                continue
            if own.name != target_name:
                out.operations.append(_rename(own, target_name))
            managed.append(_Managed(Ref(local_id=own.id), target_name, own, group.member_ids))
            continue

        candidate = by_key.get(key)
        if candidate is not None and final_key_of[candidate.id] != key:
            candidate = None  # its directory renames it away first
        explicit = group.external_id in links
        if candidate is None:
            if explicit:
                out.rejections.append(
                    _reject(group, "link-target-missing", f"no local group named {target_name!r} to link to")
                )
                continue
            creates.append(_create(target_name, group.external_id, directory, reserved=False))
            managed.append(_Managed(Ref(key=group.external_id), target_name, None, group.member_ids))
            continue
        if candidate is admin or candidate.reserved:
            out.rejections.append(
                _reject(
                    group, "reserved-name", f"{candidate.name!r} is reserved; only {rules.admin_alias!r} maps onto it"
                )
            )
            continue
        if candidate.managed_by is not None and candidate.managed_by != directory:
            out.rejections.append(_owned(group, candidate))
            continue
        if candidate.managed_by == directory and (
            candidate.external_id in seen or candidate.id in held_local or candidate.id in rebound
        ):
            out.rejections.append(
                _reject(group, "name-taken", f"directory group {candidate.external_id} has this name")
            )
            continue
        if candidate.managed_by is None and not explicit and not rules.link_groups_by_name:
            out.rejections.append(
                _reject(
                    group,
                    "name-taken",
                    f"a local group is named {candidate.name!r}; link it explicitly to manage it",
                )
            )
            continue
        out.operations.append(_link(candidate, group.external_id, directory))
        rebound.add(candidate.id)
        if candidate.name != target_name:  # a managed group carries its directory's name
            out.operations.append(_rename(candidate, target_name))
        managed.append(_Managed(Ref(local_id=candidate.id), target_name, candidate, group.member_ids))

    # 3. Bound groups the directory no longer reports leave scope: they become local,
    #    members kept (R7).
    for external_id, g in sorted(bound.items(), key=lambda item: item[1].id):
        if external_id not in seen and g.id not in held_local and g.id not in rebound:
            unlink(g)

    out.operations.extend(creates)
    if admin is None and not admin_created:
        out.operations.append(
            Operation(
                Action.CREATE_GROUP,
                rules.admin_group,
                group=Ref(key=admin_group_key(rules)),
                values=(("external_id", None), ("managed_by", None), ("name", rules.admin_group), ("reserved", True)),
            )
        )

    # 4. Memberships follow the directory (R7: inactive users are not members). R4 first: a
    #    deactivation it holds keeps the row a member of every group that lists it.
    managed.extend(kept)
    planned = {m.local.id for m in managed if m.local is not None}

    def settled(g: LocalGroup) -> bool:
        """A group of this directory that an incremental read left unchanged: it still loses
        the members this plan deactivates or whose records left, as a full read would."""
        return departed is not None and g.managed_by == directory and g.id not in held_local | unlinked

    out.held = _hold_last_admins(managed, admin, settled, local_users, users, rules)
    for m in managed:
        out.member_operations.extend(_members(m, local_users, users, out, admin, rules))
    for g in local:
        if g.id in planned:
            continue
        # A row re-bound to a new person leaves every group: local ones, other
        # directories', the admin group (R7).
        leaving = g.members & users.identity_changed_local_ids
        if settled(g):
            leaving |= g.members & (users.deactivated_local_ids | users.left_local_ids)
        if leaving:
            out.member_operations.extend(_drop(g, leaving, local_users, users, out, admin, rules))
    return out


def _create(name: str, external_id: str, directory: str, reserved: bool) -> Operation:
    return Operation(
        Action.CREATE_GROUP,
        name,
        group=Ref(key=external_id),
        values=(
            ("external_id", external_id),
            ("managed_by", directory),
            ("name", name),
            ("reserved", reserved),
        ),
    )


def _rename(g: LocalGroup, name: str) -> Operation:
    return Operation(
        Action.RENAME_GROUP,
        name,
        group=Ref(local_id=g.id),
        values=(("name", name),),
        old=(("name", g.name),),
    )


def _link(g: LocalGroup, external_id: str, directory: str) -> Operation:
    return Operation(
        Action.LINK_GROUP,
        g.name,
        group=Ref(local_id=g.id),
        values=(("external_id", external_id), ("managed_by", directory)),
        old=(("external_id", g.external_id), ("managed_by", g.managed_by)),
    )


def _unlink(g: LocalGroup) -> Operation:
    return Operation(
        Action.UNLINK_GROUP,
        g.name,
        group=Ref(local_id=g.id),
        values=(("external_id", None), ("managed_by", None)),
        old=(("external_id", g.external_id), ("managed_by", g.managed_by)),
    )


def _owned(group: ExternalGroup, local: LocalGroup) -> Rejection:
    return _reject(
        group,
        "owned-by-other-directory",
        f"local group {local.name!r} is managed by directory {local.managed_by!r}",
    )


def _reject(group: ExternalGroup, reason: str, detail: str) -> Rejection:
    name = group.name.strip() if isinstance(group.name, str) and group.name.strip() else group.external_id
    return Rejection(Kind.GROUP, name[:200], reason, detail, external_id=group.external_id)
