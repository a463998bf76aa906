"""What each operation expects to find when it is written (DESIGN §2a).

A plan is made from a `LocalState` read earlier; other writers may change the store before
the plan is applied. `stamp` records, on every operation that names an existing row, the
binding that row had in that state, so that `apply` can tell "still as planned" from
"changed since" inside the writing transaction. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from reconcile.model import Action, LocalState, Operation, Ref

USER_ACTIONS = frozenset(
    {
        Action.CREATE_USER,
        Action.UPDATE_USER,
        Action.LINK_USER,
        Action.UNLINK_USER,
        Action.ACTIVATE_USER,
        Action.DEACTIVATE_USER,
    }
)
BINDING = ("external_id", "managed_by")


def written_ref(op: Operation) -> Ref | None:
    """The row `op` checks: the user for user actions, the group for the rest (a
    membership change is guarded by its group's binding)."""
    return op.user if op.action in USER_ACTIONS else op.group


def stamp(operations: Iterable[Operation], local: LocalState) -> tuple[Operation, ...]:
    """`operations` with `expect` set from the bindings in `local` (unchanged when the
    row is one the plan creates, or the operation names no row)."""
    users = {u.id: (u.external_id, u.managed_by) for u in local.users}
    groups = {g.id: (g.external_id, g.managed_by) for g in local.groups}
    out = []
    for op in operations:
        ref = written_ref(op)
        rows = users if op.action in USER_ACTIONS else groups
        binding = rows.get(ref.local_id) if ref is not None and ref.local_id is not None else None
        out.append(op if binding is None or op.expect else replace(op, expect=tuple(zip(BINDING, binding))))
    return tuple(out)
