"""What each operation expects to find when it is written (DESIGN §2a).

A plan is made from a `LocalState` read earlier; other writers may change the store before
the plan is applied. `stamp` records, on every operation that names an existing row, the
binding that row had in that state, so that `apply` can tell "still as planned" from
"changed since" inside the writing transaction. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from reconcile.model import Action, LocalGroup, LocalState, LocalUser, Operation, Pairs, Ref

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
    users, groups = bindings_of(local.users), bindings_of(local.groups)
    out = []
    for op in operations:
        expect = None if op.expect else expected(users if op.action in USER_ACTIONS else groups, written_ref(op))
        out.append(op if expect is None else replace(op, expect=expect))
    return tuple(out)


def bindings_of(rows: Iterable[LocalUser | LocalGroup]) -> dict[int, tuple[str | None, str | None]]:
    """Each row's binding, (external id, managing directory), by row id."""
    return {row.id: (row.external_id, row.managed_by) for row in rows}


def expected(bindings: Mapping[int, tuple[str | None, str | None]], ref: Ref | None) -> Pairs | None:
    """What a write to the row `ref` names expects of its binding; None when it names no
    row of `bindings` (one the plan creates, or none at all)."""
    binding = bindings.get(ref.local_id) if ref is not None and ref.local_id is not None else None
    return None if binding is None else tuple(zip(BINDING, binding))
