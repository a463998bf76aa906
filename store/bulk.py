"""Fast executemany inserts for wide, append-only batches (events, memberships).

SQLAlchemy's executemany binds every value of every row through the column's type, which
dominates the cost of writing hundreds of thousands of event rows. Here each column's bind
processor is looked up once, values that repeat across rows (the one timestamp of a
chunk) are processed once, and the batch goes to the driver's `executemany` directly,
with the statement SQLAlchemy compiled for the dialect (on PostgreSQL, as one COPY).
The rows stored are the same as SQLAlchemy's own insert would store. Small batches (a SCIM
request's few rows) skip COPY: a plain INSERT is one round trip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.exc import DBAPIError


# Below this many rows an INSERT is one round trip where COPY takes two or three.
COPY_FROM_ROWS = 50


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) into `table` in one executemany."""
    if rows:
        insert_columns(conn, table, {name: [row[name] for row in rows] for name in rows[0]})


def insert_columns(
    conn: Connection, table: Table, columns: Mapping[str, list[Any]], *, bound: Collection[str] = ()
) -> None:
    """Insert the rows that `columns` (equal-length value lists by column name) hold, in one
    executemany; the columns named in `bound` hold values the driver takes as they are
    (bound already by the caller, e.g. JSON serialised once per distinct value)."""
    if not columns or not next(iter(columns.values())):
        return
    dialect = conn.dialect
    sql, names = _insert_sql(table, tuple(columns), dialect)
    values = [columns[name] if name in bound else _bound(table, name, columns[name], dialect) for name in names]
    if dialect.name == "postgresql" and len(values[0]) >= COPY_FROM_ROWS:
        _copy(conn, table, names, values)
        return
    if dialect.positional:
        params: list[Any] = list(zip(*values))
    else:
        params = [dict(zip(names, row)) for row in zip(*values)]
    conn.exec_driver_sql(sql, params)


def insert_returning(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *columns: str) -> list[Any]:
    """Insert a few `rows` (fewer than `COPY_FROM_ROWS`) and return `columns` of each row
    inserted, in no particular order: one statement, where `insert_many` and a select of
    the new rows take two round trips."""
    key = (table, columns)
    statement = _returning.get(key)
    if statement is None:
        statement = _returning[key] = insert(table).returning(*(table.c[c] for c in columns))
    return list(conn.execute(statement, list(rows)))


_returning: dict[tuple[Table, tuple[str, ...]], Any] = {}
_compiled: dict[tuple[Table, tuple[str, ...], str, str], tuple[str, list[str]]] = {}


def _insert_sql(table: Table, keys: tuple[str, ...], dialect: Dialect) -> tuple[str, list[str]]:
    """The dialect's INSERT of `keys` into `table` and its parameter order, compiled once
    (compiling costs more than a one-row insert itself)."""
    cache_key = (table, keys, dialect.name, dialect.paramstyle)
    found = _compiled.get(cache_key)
    if found is None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ()) if dialect.positional else list(keys)
        found = _compiled[cache_key] = (compiled.string, names)
    return found


def _copy(conn: Connection, table: Table, names: list[str], columns: list[list[Any]]) -> None:
    """PostgreSQL: COPY, an order of magnitude cheaper than one Bind/Execute per row."""
    quote = conn.dialect.identifier_preparer
    target = f"{quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)})"
    statement = f"COPY {target} FROM STDIN"
    driver = conn.connection.driver_connection
    assert driver is not None
    dbapi = conn.dialect.loaded_dbapi
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for values in zip(*columns):
                copy.write_row(values)
    except dbapi.Error as exc:
        # Callers tell a bad row (IntegrityError, DataError) from a dead connection by
        # SQLAlchemy's exception classes, as for any other statement.
        raise DBAPIError.instance(statement, None, exc, dbapi.Error, dialect=conn.dialect) from exc


def _bound(table: Table, name: str, values: list[Any], dialect: Dialect) -> list[Any]:
    """One column's values as the driver wants them (None stays NULL)."""
    process = table.c[name].type._cached_bind_processor(dialect)
    if process is None:
        return values
    if not isinstance(next((v for v in values if v is not None), None), datetime):
        return [None if value is None else process(value) for value in values]
    # A chunk's rows share one timestamp or a few: each is processed once.
    done: dict[datetime, Any] = {}
    out: list[Any] = []
    for value in values:
        if value is None:
            out.append(None)
        else:
            if value not in done:
                done[value] = process(value)
            out.append(done[value])
    return out
