"""Checks made at write time, inside the transaction that writes, so that what they found
still holds at commit: the row is bound as when the operation was planned (or by this
plan's own link) and a local plan writes no managed row (R5); no field changed since it was
planned (no lost update); the directory is still enabled at the writer's generation; the
reserved admin group keeps an active member (R4). The conflict reasons they give are
named here (docs/rules.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, func, select

from reconcile.apply.lookup import _select_in
from reconcile.apply.result import _Indexed
from reconcile.expect import BINDING
from reconcile.model import Action, Operation, Ref
from store.models import directories, groups, memberships, users

if TYPE_CHECKING:
    from reconcile.apply.applier import _Applier

# Conflict reasons (docs/rules.md).
CHANGED = "changed-since-planned"
OTHER_OWNER = "owned-by-other-directory"
MANAGED = "managed"
DISABLED = "directory-disabled"
ADMIN_EMPTY = "admin-group-would-be-empty"
# An operation of an all-or-nothing plan that was not written because another one was not.
REQUEST_REFUSED = "request-refused"


class DirectoryChanged(Exception):
    """The directory was disabled or re-enabled since the writer started."""


class _AdminWouldBeEmpty(Exception):
    """The transaction would commit the admin group without an active member."""

    def __init__(self, offending: set[int]) -> None:
        super().__init__("the admin group would be left without an active member")
        self.offending = offending


def _binding_conflict(
    op: Operation,
    is_user: bool,
    row_id: int,
    row: Mapping[str, Any],
    directory: str | None,
    own_bindings: Mapping[tuple[bool, int], set[tuple[object, ...]]],
) -> str | None:
    """Why `op` must not write row `row_id` as it is now (None when it may): the row
    is bound otherwise than when the operation was planned, and not by this plan's
    own link. A local (admin) plan writes only rows no directory manages (R5)."""
    expected = dict(op.expect) if op.expect else ({} if directory is not None else dict.fromkeys(BINDING))
    if not expected:
        return None
    now = tuple(row[c] for c in BINDING)
    if now == tuple(expected.get(c) for c in BINDING) or now in own_bindings.get((is_user, row_id), ()):
        return None
    owner = row["managed_by"]
    if directory is None:
        return MANAGED if owner is not None else CHANGED
    return OTHER_OWNER if owner is not None and owner != directory else CHANGED


def _changed_since_planned(op: Operation, row: Mapping[str, Any], diff: Mapping[str, Any]) -> bool:
    """A field the operation changes holds neither the value it was planned from nor the
    new one: someone else wrote it since (no lost update)."""
    return any(name in diff and name in row and row[name] != value for name, value in op.old)


def _check_directory(conn: Connection, directory: str | None, generation: int | None) -> None:
    """The directory is still enabled at the generation the writer started under (no
    check without one); else `DirectoryChanged`."""
    if generation is None or directory is None:
        return
    query = select(directories.c.enabled, directories.c.generation).where(directories.c.name == directory)
    if conn.dialect.name == "postgresql":
        # Shared: cycles' chunks don't wait on each other; enable/disable (an UPDATE
        # of this row) waits for the chunk, and the chunk after it sees the change.
        query = query.with_for_update(read=True)
    row = conn.execute(query).first()
    if row is None or not row.enabled:
        raise DirectoryChanged(f"directory {directory!r} was disabled while this cycle ran")
    if row.generation != generation:
        raise DirectoryChanged(f"directory {directory!r} was disabled and enabled again while this cycle ran")


class _AdminLockNeeded(Exception):
    """A user the transaction deactivated without the admin group's lock has become a
    member of that group meanwhile (a concurrent writer committed it): run the
    transaction again under the lock."""


@dataclass(frozen=True)
class _AdminGuard:
    """R4 inside one transaction. One that may write the reserved admin group's row or its
    members, or deactivate one of its members, locks that row (PostgreSQL; SQLite holds
    the database write lock already) before anything is written, and after the writes the
    group must still have an active member if it had one before. One that deactivates only
    users outside the group takes no lock, but checks after its writes that none of them
    joined the group meanwhile: it holds each such user's row `FOR UPDATE`, so a
    concurrent membership insert of that user (which key-share locks it) either waits for
    this commit and then sees the user inactive, or committed first and is seen here
    (`_AdminLockNeeded`). Any other transaction neither waits on the group nor checks it."""

    group_id: int
    # The group's active members before the writes when the row is locked, else None.
    active_before: frozenset[int] | None
    # Users deactivated without the lock.
    unlocked_deactivations: tuple[Ref | None, ...] = ()

    @staticmethod
    def open(conn: Connection, applier: _Applier, chunk: list[_Indexed], lock: bool = False) -> _AdminGuard | None:
        # Every transaction that may write the admin group's row or its members, or
        # deactivate one of them, takes the group's lock first: one lock order for all
        # writers (a link of the alias taken after user rows would otherwise deadlock
        # with an admin action that holds the group and waits for a user). `lock` takes
        # it whatever the chunk holds (a transaction run again after `_AdminLockNeeded`).
        if not any(op.action in _TOUCH_ADMIN for _, op in chunk):
            return None
        group_id = applier.admin_group_id(conn)
        if group_id is None:
            return None
        deactivated = tuple(op.user for _, op in chunk if op.action is Action.DEACTIVATE_USER)
        if not (lock or _may_write_admin(conn, applier, chunk, group_id)
                or _members_among(conn, applier, group_id, deactivated)):
            return _AdminGuard(group_id, None, deactivated) if deactivated else None
        if conn.dialect.name == "postgresql":
            conn.execute(select(groups.c.id).where(groups.c.id == group_id).with_for_update())
        if not any(op.action in _MAY_EMPTY_ADMIN for _, op in chunk):
            return None
        active = frozenset(conn.execute(_active_members(group_id, users.c.id)).scalars())
        return _AdminGuard(group_id, active) if active else None

    def check(self, conn: Connection, applier: _Applier, chunk: list[_Indexed], excluded: set[int]) -> None:
        if self.active_before is None:
            if _members_among(conn, applier, self.group_id, self.unlocked_deactivations):
                raise _AdminLockNeeded()
            return
        left = conn.execute(_active_members(self.group_id, func.count())).scalar()
        if left:
            return
        offending: set[int] = set()
        for n, (_, op) in enumerate(chunk):
            if n in excluded:
                continue
            if op.action is Action.REMOVE_MEMBER and applier.groups_of(conn, [op.group])[0] == self.group_id:
                offending.add(n)
            elif op.action is Action.DEACTIVATE_USER and applier.users_of(conn, [op.user])[0] in self.active_before:
                offending.add(n)
        raise _AdminWouldBeEmpty(offending)


# The reserved admin group's id (none before it exists).
_RESERVED_GROUP_ID = select(groups.c.id).where(groups.c.reserved.is_(True)).order_by(groups.c.id).limit(1)


def _may_write_admin(conn: Connection, applier: _Applier, chunk: list[_Indexed], admin_id: int) -> bool:
    """Whether the chunk may write the admin group's row or its members: an operation on
    a group that resolves to it, or the create of a reserved group."""
    refs = []
    for _, op in chunk:
        if op.action is Action.CREATE_GROUP and dict(op.values).get("reserved"):
            return True
        if op.action in _GROUP_WRITES:
            refs.append(op.group)
    # The same resolution the writes make next, so it costs no extra lookups: a ref
    # is a row id already, or a key this apply mapped or looks up once.
    return admin_id in applier.groups_of(conn, refs)


def _members_among(conn: Connection, applier: _Applier, group_id: int, refs: Iterable[Ref | None]) -> bool:
    """Whether any of the users `refs` name is a member of group `group_id` now."""
    user_ids = {i for i in applier.users_of(conn, refs) if i is not None}
    found = _select_in(conn, (memberships.c.user_id,), memberships.c.user_id, user_ids,
                       memberships.c.group_id == group_id)
    return bool(list(found))  # read to the end: no statement left open in the transaction


_MAY_EMPTY_ADMIN = (Action.REMOVE_MEMBER, Action.DEACTIVATE_USER)
# Operations that write a group's row or its members.
_GROUP_WRITES = frozenset({
    Action.ADD_MEMBER, Action.REMOVE_MEMBER, Action.RENAME_GROUP, Action.LINK_GROUP, Action.UNLINK_GROUP,
})
_TOUCH_ADMIN = frozenset({*_GROUP_WRITES, Action.DEACTIVATE_USER, Action.CREATE_GROUP})


def _active_members(group_id: int, column: ColumnElement[Any]) -> Any:
    return (
        select(column)
        .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
        .where(memberships.c.group_id == group_id, users.c.active.is_(True))
    )


# Actions that give an existing row a binding, or take it away (this plan's own links).
_REBINDS = frozenset({Action.LINK_USER, Action.LINK_GROUP, Action.UNLINK_USER, Action.UNLINK_GROUP})
