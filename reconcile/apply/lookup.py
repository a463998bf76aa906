"""Finding rows: the keys a plan names (`Ref.key`) resolved in the store, lookups by any
number of values (`_select_in`, sliced to fit a statement, optionally locking), and the
permutation cycles among key moves (emails, group names) that must apply as a whole."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, Table, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from reconcile.expect import written_ref
from reconcile.model import Action, Operation, Ref
from reconcile.rules import text_key
from store.models import groups, users

# A key naming a local row by its natural key, even in a directory plan (the admin group).
LOCAL_PREFIX = "local:"
_MOVES = {Action.UPDATE_USER: "email", Action.RENAME_GROUP: "name"}


def _is_move(op: Operation) -> bool:
    name = _MOVES.get(op.action)
    if name is None:
        return False
    ref = op.user if op.action is Action.UPDATE_USER else op.group
    return ref is not None and ref.local_id is not None and name in dict(op.values)


def _lookup_keys(
    conn: Connection, table: Table, natural: str, directory: str | None, keys: set[str]
) -> dict[str, int]:
    """Rows a key names when this apply did not create them: `local:<name>` and every key
    of a local plan by natural key, other keys of a directory plan by external id."""
    by_external = {k for k in keys if directory is not None and not k.startswith(LOCAL_PREFIX)}
    by_natural = {text_key(k.removeprefix(LOCAL_PREFIX)): k for k in keys - by_external}
    found: dict[str, int] = {}
    if by_external:
        rows = _select_in(conn, (table.c.external_id, table.c.id), table.c.external_id, by_external,
                          table.c.managed_by == directory)
        found.update((k, i) for k, i in rows)
    if by_natural:
        rows = _select_in(conn, (table.c[natural], table.c.id), table.c[natural], by_natural)
        found.update((by_natural[k], i) for k, i in rows)
    return found


# Values per IN list: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
_IN_SLICE = 5000


def _select_in(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
    column: ColumnElement[Any],
    values: Iterable[Any],
    *where: ColumnElement[bool],
    lock: str | None = None,
) -> Iterator[Any]:
    """Rows of `columns` whose `column` is one of `values` (and matching `where`), queried
    in slices so that any number of values fits a statement.

    `lock` ("update" or "share") locks the rows on PostgreSQL until the transaction ends,
    in the order of `values`: a check made on them then still holds when the transaction
    writes (READ COMMITTED would otherwise let a concurrent commit slip in between).
    SQLite's write transactions hold the database lock already.
    """
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _IN_SLICE):
        query = select(*columns).where(_one_of(conn, column, ordered[start : start + _IN_SLICE]), *where)
        if lock is not None and conn.dialect.name == "postgresql":
            query = query.order_by(column).with_for_update(read=lock == "share")
        yield from conn.execute(query)


def _one_of(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values` with the values as one parameter: an array on PostgreSQL, a JSON
    list on SQLite. A plain IN binds each value on its own, and at a large plan's
    hundreds of thousands of values that binding cost more than the queries."""
    match conn.dialect.name:
        case "postgresql":
            return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        case "sqlite":
            listed = func.json_each(bindparam(None, json.dumps(list(values)), type_=String())).table_valued("value")
            return column.in_(select(listed.c.value).scalar_subquery())
    return column.in_(values)


def _find_cycle(conn: Connection, ops: Sequence[Operation]) -> list[int]:
    """Positions in `ops` (all of one key-changing action) forming a cycle in which each
    row wants the key the next one holds; [] when there is none."""
    table, natural, field_name = (
        (users, "email_key", "email") if ops[0].action is Action.UPDATE_USER else (groups, "name_key", "name")
    )
    row_of = [_ref_of(op).local_id for op in ops]
    wanted = [text_key(str(op.value(field_name))) for op in ops]
    holders = {k: i for k, i in _select_in(conn, (table.c[natural], table.c.id), table.c[natural], wanted)}
    position = {row: n for n, row in enumerate(row_of)}
    following = [position.get(holders.get(key)) for key in wanted]
    # Each position has at most one successor: walk each path once, colouring as we go.
    state = [0] * len(ops)  # 0 unseen, 1 on the current path, 2 explored
    for start in range(len(ops)):
        path: list[int] = []
        n: int | None = start
        while n is not None and state[n] == 0:
            state[n] = 1
            path.append(n)
            n = following[n]
        if n is not None and state[n] == 1:
            return path[path.index(n) :]
        for m in path:
            state[m] = 2
    return []


def _ref_of(op: Operation) -> Ref:
    return written_ref(op) or Ref()
