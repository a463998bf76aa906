"""Reads a SCIM request needs: the rows it touches, found by indexed keys, and stable
pages for list queries. Writes go through `reconcile.apply` only. Functions work in the
caller's session.

Every resource a scim directory serves is a row it manages (`managed_by`) with a
`scim_id`; a filter is the disjunctive normal form of `reconcile.push_filter`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, false, func, or_, select, true
from sqlalchemy.orm import Session

from reconcile.push import StoredGroup, StoredUser
from reconcile.rules import email_key, name_key
from reconcile.push_filter import Filter
from store.engine import Store
from store.models import directories, groups, memberships, scim_tokens, users

# Reads work on a plain connection (cheaper than a session per request) or a session.
Reader = Connection | Session


@contextmanager
def reading(store: Store) -> Iterator[Connection]:
    """A connection for reads only. On PostgreSQL in autocommit mode: no BEGIN and
    ROLLBACK round trips around a request's one or two lookups (each statement sees
    committed data). SQLite has no round trips to save, and switching a pooled
    connection to autocommit and back costs two PRAGMAs and hands the connection back
    with the sqlite3 module's own transaction handling on, which the store turns off."""
    with store.engine.connect() as conn:
        yield conn if store.is_sqlite else conn.execution_options(isolation_level="AUTOCOMMIT")


# The lookups every SCIM request makes, built once: only their parameters change.
_TOKEN_HOLDER = (
    select(scim_tokens.c.token_hash, scim_tokens.c.directory, scim_tokens.c.expires_at, directories.c.enabled)
    .join(directories, directories.c.name == scim_tokens.c.directory)
    .where(scim_tokens.c.token_hash == bindparam("token_hash")))
_GENERATION = select(directories.c.enabled, directories.c.generation).where(directories.c.name == bindparam("name"))


def token_holder(reader: Reader, token_hash: str) -> tuple[str, str, Any, bool] | None:
    """(stored digest, directory, expires_at, directory enabled) of the token whose digest
    is `token_hash`."""
    row = reader.execute(_TOKEN_HOLDER, {"token_hash": token_hash}).first()
    return (str(row[0]), str(row[1]), row[2], bool(row[3])) if row is not None else None


def directory_generation(reader: Reader, name: str) -> int | None:
    """The generation of enabled directory `name`; None when it is disabled or unknown."""
    row = reader.execute(_GENERATION, {"name": name}).first()
    return int(row[1] or 0) if row is not None and row[0] else None

_USER_COLUMNS = (users.c.id, users.c.email, users.c.given_name, users.c.family_name, users.c.display_name,
                 users.c.active, users.c.managed_by, users.c.external_id, users.c.scim_id, users.c.created_at,
                 users.c.updated_at)
_GROUP_COLUMNS = (groups.c.id, groups.c.name, groups.c.managed_by, groups.c.external_id, groups.c.scim_id,
                  groups.c.reserved, groups.c.created_at, groups.c.updated_at)


def _user(row: Any) -> StoredUser:
    return StoredUser(*row)


def _group(row: Any) -> StoredGroup:
    return StoredGroup(*row)


_USER_BY_SCIM_ID = select(*_USER_COLUMNS).where(users.c.scim_id == bindparam("scim_id"),
                                                 users.c.managed_by == bindparam("directory"))
_USER_BY_EMAIL_KEY = select(*_USER_COLUMNS).where(users.c.email_key == bindparam("email_key"))


def user_by_scim_id(session: Reader, directory: str, scim_id: str) -> StoredUser | None:
    row = session.execute(_USER_BY_SCIM_ID, {"scim_id": scim_id, "directory": directory}).first()
    return _user(row) if row is not None else None


def user_by_email(session: Reader, email: str) -> StoredUser | None:
    """The row holding `email` (the store's case-insensitive key), whoever manages it."""
    row = session.execute(_USER_BY_EMAIL_KEY, {"email_key": email_key(email)}).first()
    return _user(row) if row is not None else None


def user_groups(session: Reader, user_id: int) -> list[tuple[int, str, str | None]]:
    """Every group `user_id` is a member of: (id, name, managed_by)."""
    query = (select(groups.c.id, groups.c.name, groups.c.managed_by)
             .select_from(memberships.join(groups, groups.c.id == memberships.c.group_id))
             .where(memberships.c.user_id == user_id).order_by(groups.c.id))
    return [(int(i), str(n), m) for i, n, m in session.execute(query)]


def group_by_scim_id(session: Reader, directory: str, scim_id: str) -> StoredGroup | None:
    row = session.execute(select(*_GROUP_COLUMNS).where(groups.c.scim_id == scim_id,
                                                        groups.c.managed_by == directory)).first()
    return _group(row) if row is not None else None


def group_by_name(session: Reader, name: str) -> StoredGroup | None:
    """The group called `name` (case-insensitively), whoever manages it."""
    row = session.execute(select(*_GROUP_COLUMNS).where(groups.c.name_key == name_key(name))).first()
    return _group(row) if row is not None else None


def admin_group(session: Reader, name: str) -> StoredGroup | None:
    """The reserved admin group: by its flag, else by its name."""
    row = session.execute(select(*_GROUP_COLUMNS).where(groups.c.reserved.is_(True)).order_by(groups.c.id)).first()
    return _group(row) if row is not None else group_by_name(session, name)


def resolve_users(session: Reader, directory: str, scim_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """SCIM user ids of `directory` -> (local id, email); unknown ids are left out."""
    wanted = sorted(set(scim_ids))
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(wanted), 5000):
        query = select(users.c.scim_id, users.c.id, users.c.email).where(
            users.c.scim_id.in_(wanted[start:start + 5000]), users.c.managed_by == directory)
        found.update((s, (int(i), str(e))) for s, i, e in session.execute(query))
    return found


def directory_members(session: Reader, group_id: int, directory: str) -> list[tuple[int, str]]:
    """Members of `group_id` that `directory` serves over SCIM: (local id, email)."""
    query = (select(users.c.id, users.c.email)
             .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
             .where(memberships.c.group_id == group_id, users.c.managed_by == directory,
                    users.c.scim_id.is_not(None)))
    return [(int(i), str(e)) for i, e in session.execute(query)]


def members_of(session: Reader, group_ids: Sequence[int], directory: str) -> dict[int, list[tuple[str, str]]]:
    """For each group, its members served by `directory`: (SCIM id, email), in id order."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if not group_ids:
        return out
    query = (select(memberships.c.group_id, users.c.scim_id, users.c.email)
             .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
             .where(memberships.c.group_id.in_(list(group_ids)), users.c.managed_by == directory,
                    users.c.scim_id.is_not(None))
             .order_by(memberships.c.group_id, users.c.id))
    for group_id, scim_id, email in session.execute(query):
        out[int(group_id)].append((str(scim_id), str(email)))
    return out


# --- pages -------------------------------------------------------------------------------------


def users_page(session: Reader, directory: str, where: Filter | None, start: int,
               count: int) -> tuple[int, list[StoredUser]]:
    """(total matching, the `count` users from 1-based `start`), in a stable order."""
    condition = and_(users.c.managed_by == directory, users.c.scim_id.is_not(None),
                     _dnf(where, _user_term))
    return _page(session, _USER_COLUMNS, users.c.id, condition, start, count, _user)


def groups_page(session: Reader, directory: str, where: Filter | None, start: int,
                count: int) -> tuple[int, list[StoredGroup]]:
    condition = and_(groups.c.managed_by == directory, groups.c.scim_id.is_not(None),
                     _dnf(where, _group_term))
    return _page(session, _GROUP_COLUMNS, groups.c.id, condition, start, count, _group)


def _page(session: Reader, columns: Sequence[Any], order: Any, condition: ColumnElement[bool], start: int,
          count: int, build: Any) -> tuple[int, list[Any]]:
    if count > 0:
        rows = [build(r) for r in session.execute(
            select(*columns).where(condition).order_by(order).offset(start - 1).limit(count))]
        if start == 1 and len(rows) < count:
            return len(rows), rows  # the whole result is here: no count needed (a filter lookup)
    else:
        rows = []
    total = int(session.execute(select(func.count()).select_from(order.table).where(condition)).scalar() or 0)
    return total, rows


def _dnf(where: Filter | None, term: Any) -> ColumnElement[bool]:
    if where is None:
        return true()
    if not where:
        return false()
    return or_(*(and_(*(term(name, value) for name, value in alternative)) for alternative in where))


def _user_term(name: str, value: str) -> ColumnElement[bool]:
    match name:
        case "email":
            return users.c.email_key == email_key(value)
        case "external_id":
            return and_(users.c.external_id == value, users.c.scim_id != value)
        case "id":
            return users.c.scim_id == value
        case "display_name":
            return func.lower(users.c.display_name) == value.lower()
    raise AssertionError(name)


def _group_term(name: str, value: str) -> ColumnElement[bool]:
    match name:
        case "display_name":
            return groups.c.name_key == name_key(value)
        case "external_id":
            return and_(groups.c.external_id == value, groups.c.scim_id != value)
        case "id":
            return groups.c.scim_id == value
    raise AssertionError(name)


def count_directory_rows(session: Reader, directory: str) -> Mapping[str, int]:
    """How many users and groups `directory` serves (for status and tests)."""
    n_users = session.execute(select(func.count()).select_from(users).where(
        users.c.managed_by == directory, users.c.scim_id.is_not(None))).scalar()
    n_groups = session.execute(select(func.count()).select_from(groups).where(
        groups.c.managed_by == directory, groups.c.scim_id.is_not(None))).scalar()
    return {"users": int(n_users or 0), "groups": int(n_groups or 0)}
