"""One name key: recompute `users.email_key`, `groups.name_key` and `invites.email_key`
with the planner's key (`reconcile.rules.text_key`: NFKC, case folding, trimmed) instead
of the lower-cased text 0001 stored.

Rows that would share a key under the new rule ("Straße" and "STRASSE", "ＯＰＳ" and
"ops") are never merged: the upgrade is refused, nothing is changed, and the one-line
error lists them so that an operator can rename one of each set and upgrade again. The
downgrade goes back to lower-cased keys under the same refusal.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from reconcile.rules import text_key
from store.engine import StoreError, safe_url

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Key = Callable[[str], str]


def _keyed(name: str, text: str, key: str) -> sa.TableClause:
    """A table as this revision knows it, not as store.models may describe it later."""
    return sa.table(name, sa.column("id", sa.Integer), sa.column(text, sa.String), sa.column(key, sa.String))


_USERS = _keyed("users", "email", "email_key")
_GROUPS = _keyed("groups", "name", "name_key")
_INVITES = _keyed("invites", "email", "email_key")
# (table, noun, column keyed, key column); only users and groups have unique keys.
_UNIQUE = ((_USERS, "user", "email", "email_key"), (_GROUPS, "group", "name", "name_key"))
_CHUNK = 2000
_LISTED = 10  # collision sets named in the error; the count says how many more


def upgrade() -> None:
    _rekey(text_key, "0002", "the new matching (Unicode NFKC and case folding)", "`dirsync db upgrade`")


def downgrade() -> None:
    _rekey(_lowered, "0001", "the old matching (lower case)", "the downgrade")


def _lowered(text: str) -> str:
    """The key revision 0001 stored."""
    return text.strip().lower()


def _rekey(key: Key, target: str, rule: str, retry: str) -> None:
    conn = op.get_bind()
    moves = {table.name: _moves(conn, table, column, natural, key) for table, _, column, natural in _UNIQUE}
    clashes = [
        (noun, clash)
        for table, noun, column, natural in _UNIQUE
        for clash in _collisions(conn, table, column, natural, moves[table.name])
    ]
    if clashes:
        raise StoreError(_refusal(conn, clashes, target, rule, retry))
    for table, _, _, natural in _UNIQUE:
        _move(conn, table, natural, moves[table.name], park=True)
    _move(conn, _INVITES, "email_key", _moves(conn, _INVITES, "email", "email_key", key), park=False)


def _moves(
    conn: sa.Connection, table: sa.TableClause, column: str, natural: str, key: Key
) -> dict[int, tuple[str, str]]:
    """Rows whose key changes: id -> (text, new key). Streamed: usually few rows move."""
    query = sa.select(table.c.id, table.c[column], table.c[natural]).execution_options(yield_per=5000)
    moves: dict[int, tuple[str, str]] = {}
    for row_id, text, current in conn.execute(query):
        new_key = key(text)
        if new_key != current:
            moves[row_id] = (text, new_key)
    return moves


def _collisions(
    conn: sa.Connection, table: sa.TableClause, column: str, natural: str, moves: dict[int, tuple[str, str]]
) -> list[list[tuple[int, str]]]:
    """Sets of rows (id, text) that would share a key. The old keys are unique, so every
    such set holds a moving row: its new key meets another mover's or a staying row's."""
    sharing: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    for row_id, (text, new_key) in moves.items():
        sharing[new_key].append((row_id, text))
    for chunk in _chunks(sharing):
        query = sa.select(table.c.id, table.c[column], table.c[natural]).where(table.c[natural].in_(chunk))
        for row_id, text, current in conn.execute(query):
            if row_id not in moves:  # a row that keeps its key
                sharing[current].append((row_id, text))
    return [sorted(rows) for _, rows in sorted(sharing.items()) if len(rows) > 1]


def _move(
    conn: sa.Connection, table: sa.TableClause, natural: str, moves: dict[int, tuple[str, str]], park: bool
) -> None:
    """Set the new keys. With `park`, every moving row first steps aside to a key no text
    can have (a leading space never survives trimming), so keys may trade places."""
    if not moves:
        return
    statement = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values({natural: sa.bindparam("new_key")})
    if park:
        conn.execute(statement, [{"row_id": i, "new_key": f" {i}"} for i in moves])
    conn.execute(statement, [{"row_id": i, "new_key": new_key} for i, (_, new_key) in moves.items()])


def _refusal(
    conn: sa.Connection, clashes: list[tuple[str, list[tuple[int, str]]]], target: str, rule: str, retry: str
) -> str:
    """One line: which rows collide and what to do about it."""
    named = "; ".join(
        f"{noun}s " + " and ".join(f"#{row_id} {text!r}" for row_id, text in rows) for noun, rows in clashes[:_LISTED]
    )
    more = f"; and {len(clashes) - _LISTED} more" if len(clashes) > _LISTED else ""
    return (
        f"database at {safe_url(conn.engine.url)} cannot be migrated to revision {target}:"
        f" {len(clashes)} set{'s' if len(clashes) != 1 else ''} of rows would share one email or"
        f" group name under {rule}, and rows are never merged: {named}{more}."
        " Rename all but one row of each set (in the identity provider that manages it, or in"
        f" the database for a local row), then run {retry} again"
    )


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    items = sorted(values)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
