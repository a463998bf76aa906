"""Adding and removing memberships: one outcome per operation, a pair already as wanted
is a noop, and a group bound otherwise than when the operation was planned is a conflict
(its row is share-locked first, so that holds at commit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, bindparam, delete

from reconcile.apply.lookup import _select_in
from reconcile.apply.result import _Result
from reconcile.model import Action, Operation
from store.bulk import insert_many
from store.models import Outcome, groups, memberships

if TYPE_CHECKING:
    from reconcile.apply.writer import _Writer


def _members(applier: _Writer, conn: Connection, ops: list[Operation]) -> list[_Result]:
    adding = ops[0].action is Action.ADD_MEMBER
    group_ids = applier.groups_of(conn, (op.group for op in ops))
    user_ids = applier.users_of(conn, (op.user for op in ops))
    wanted_groups = {g for g in group_ids if g is not None}
    wanted_users = {u for u in user_ids if u is not None}
    bindings: dict[int, dict[str, Any]] = {}
    if wanted_groups:
        rows = _select_in(conn, (groups.c.id, groups.c.managed_by, groups.c.external_id), groups.c.id,
                          wanted_groups, lock="share")
        bindings = {i: {"managed_by": owner, "external_id": ext} for i, owner, ext in rows}
    present: set[tuple[int, int]] = set()
    if wanted_groups and wanted_users:
        # The users' memberships, by the user index, kept for the wanted groups here: with
        # both lists in the query SQLite probes the key (group, user) for every pair, 2,000
        # users by 2,000 groups taking 0.67 s where this takes 0.01 s. One group is one probe
        # per user.
        m = memberships.c
        one_group = (m.group_id == next(iter(wanted_groups)),) if len(wanted_groups) == 1 else ()
        rows = _select_in(conn, (m.group_id, m.user_id), m.user_id, wanted_users, *one_group)
        present = {(g, u) for g, u in rows if g in wanted_groups}
    results: list[_Result] = []
    writes: list[dict[str, int]] = []
    # The check depends on the group and the binding the operation expects of it only: a
    # chunk's thousands of operations on a few groups make it a few times.
    conflicts: dict[tuple[int, object], str | None] = {}
    for op, group_id, user_id in zip(ops, group_ids, user_ids):
        if group_id is None or user_id is None:
            missing = f"group {op.group}" if group_id is None else f"user {op.user}"
            results.append((Outcome.FAILED, f"unresolved {missing}"))
            continue
        conflict = None
        if group_id in bindings:
            seen = (group_id, op.expect)
            if seen in conflicts:
                conflict = conflicts[seen]
            else:
                conflict = conflicts[seen] = applier.binding_conflict(op, False, group_id, bindings[group_id])
        if conflict is not None:
            results.append((Outcome.CONFLICT, conflict))
            continue
        pair = (group_id, user_id)
        if (pair in present) is adding:
            results.append((Outcome.NOOP, None))
            continue
        if adding:
            present.add(pair)
            writes.append({"group_id": group_id, "user_id": user_id})
        else:
            present.discard(pair)
            writes.append({"_group": group_id, "_user": user_id})
        results.append((Outcome.APPLIED, None))
    if writes and adding:
        insert_many(conn, memberships, writes)
    elif writes:
        stmt = delete(memberships).where(
            and_(memberships.c.group_id == bindparam("_group"), memberships.c.user_id == bindparam("_user"))
        )
        conn.execute(stmt, writes)
    return results
