"""Writing users, groups and invites: creating them (an existing row, found by its binding
or, for a local row, by its email / name, makes the create a noop that maps the key to
it), setting columns on existing rows (a row already holding the values is a noop; unique
keys may swap), and revoking invites. Each handler takes operations of one action and
returns one outcome per operation, in order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, update

from reconcile.apply.checks import CHANGED, _changed_since_planned
from reconcile.apply.lookup import _ref_of, _select_in
from reconcile.apply.result import _Result
from reconcile.expect import BINDING, USER_ACTIONS
from reconcile.model import Action, Operation, Ref
from reconcile.rules import email_key, name_key
from store.bulk import COPY_FROM_ROWS, insert_many, insert_returning
from store.models import InviteStatus, Outcome, groups, invites, users

if TYPE_CHECKING:
    from reconcile.apply.writer import _Writer

_USER_FIELDS = ("email", "given_name", "family_name", "display_name")


# --- creating rows ---------------------------------------------------------------------------


def _create_users(applier: _Writer, conn: Connection, ops: list[Operation]) -> list[_Result]:
    at = applier.at
    rows = []
    keys = []
    for op in ops:
        v = dict(op.values)
        email = str(v.get("email") or "").strip()
        external_id = v.get("external_id")
        row = {
            "email": email,
            "email_key": email_key(email),
            "given_name": v.get("given_name"),
            "family_name": v.get("family_name"),
            "display_name": v.get("display_name"),
            "active": bool(v.get("active", True)),
            "managed_by": v.get("managed_by"),
            "external_id": external_id,
            "scim_id": v.get("scim_id"),
            "created_at": at,
            "updated_at": at,
        }
        rows.append(row)
        keys.append(_key(op.user, external_id, email))
    return _create(applier, conn, users, "email_key", rows, keys, applier.user_keys)


def _create_groups(applier: _Writer, conn: Connection, ops: list[Operation]) -> list[_Result]:
    at = applier.at
    rows = []
    keys = []
    for op in ops:
        v = dict(op.values)
        name = str(v.get("name") or "").strip()
        external_id = v.get("external_id")
        rows.append(
            {
                "name": name,
                "name_key": name_key(name),
                "managed_by": v.get("managed_by"),
                "external_id": external_id,
                "reserved": bool(v.get("reserved", False)),
                "scim_id": v.get("scim_id"),
                "created_at": at,
                "updated_at": at,
            }
        )
        keys.append(_key(op.group, external_id, name))
    return _create(applier, conn, groups, "name_key", rows, keys, applier.group_keys)


def _key(ref: Ref | None, external_id: object, natural: str) -> str:
    """The key later operations use for a created row: its Ref's, else the external id
    it is bound to, else its natural key."""
    if ref is not None and ref.key:
        return ref.key
    return str(external_id if external_id is not None else natural)


def _create(
    applier: _Writer,
    conn: Connection,
    table: Table,
    natural: str,
    rows: list[dict[str, Any]],
    keys: list[str],
    key_map: dict[str, int],
) -> list[_Result]:
    """Insert the rows that do not exist yet, by binding (managed_by, external_id) or, for
    local rows, by natural key; every key ends up mapped to its row."""
    # Each row's identity: ("bound", managed_by, external_id), or ("local", natural key).
    identities = [
        ("bound", r["managed_by"], r["external_id"]) if r["external_id"] is not None else ("local", r[natural])
        for r in rows
    ]
    existing: dict[tuple[Any, ...], int] = {}
    taken: set[str] = set()
    bound = [r for r in rows if r["external_id"] is not None]
    if bound:
        found = _select_in(
            conn, (table.c.id, table.c.managed_by, table.c.external_id), table.c.external_id,
            {r["external_id"] for r in bound},
        )
        existing.update((("bound", m, e), int(i)) for i, m, e in found)
        # A row that took the key since the plan was made (a concurrent writer) is not
        # this one: the create conflicts instead of failing on the unique index.
        holders = _select_in(conn, (table.c[natural],), table.c[natural], {r[natural] for r in bound})
        taken = {str(k) for (k,) in holders}
    if len(bound) < len(rows):
        local = {r[natural] for r in rows if r["external_id"] is None}
        found = _select_in(conn, (table.c.id, table.c[natural]), table.c[natural], local)
        existing.update((("local", k), int(i)) for i, k in found)

    applied: _Result = (Outcome.APPLIED, None)
    noop: _Result = (Outcome.NOOP, None)
    conflict: _Result = (Outcome.CONFLICT, CHANGED)
    results: list[_Result] = []
    new_rows: list[dict[str, Any]] = []
    first_of: dict[tuple[Any, ...], str] = {}  # a new row's identity -> its natural key
    for row, ident in zip(rows, identities):
        if ident in existing or ident in first_of:
            results.append(noop)
        elif ident[0] == "bound" and row[natural] in taken:
            results.append(conflict)
        else:
            taken.add(row[natural])
            first_of[ident] = row[natural]
            new_rows.append(row)
            results.append(applied)
    if new_rows:
        if len(new_rows) < COPY_FROM_ROWS:  # a few rows (a SCIM request's): ids in the same round trip
            created: Iterable[Any] = insert_returning(conn, table, new_rows, natural, "id")
        else:
            insert_many(conn, table, new_rows)
            # The natural key is unique, so it finds each new row's id; one indexed select is
            # far cheaper than RETURNING through SQLAlchemy's row-by-row executemany.
            created = _select_in(conn, (table.c[natural], table.c.id), table.c[natural],
                                 [r[natural] for r in new_rows])
        new_ids: dict[str, int] = {str(k): int(i) for k, i in created}
        for ident, natural_key in first_of.items():
            existing[ident] = new_ids[natural_key]
    applier.remember_all(key_map, ((key, existing[ident]) for key, ident, result in zip(keys, identities, results)
                                   if result is not conflict))
    return results


def _create_invites(applier: _Writer, conn: Connection, ops: list[Operation]) -> list[_Result]:
    """An open invite per email, unless one is open already (case-insensitively)."""
    emails = [str(op.value("email") or "").strip() for op in ops]
    found = _select_in(conn, (invites.c.email_key,), invites.c.email_key, {email_key(e) for e in emails},
                       invites.c.status == InviteStatus.OPEN.value)
    open_keys = {row[0] for row in found}
    results: list[_Result] = []
    rows = []
    for email in emails:
        if email_key(email) in open_keys:
            results.append((Outcome.NOOP, None))
            continue
        open_keys.add(email_key(email))
        rows.append(
            {
                "email": email,
                "email_key": email_key(email),
                "status": InviteStatus.OPEN.value,
                "created_at": applier.at,
                "updated_at": applier.at,
            }
        )
        results.append((Outcome.APPLIED, None))
    if rows:
        insert_many(conn, invites, rows)
    return results


# --- changing rows ---------------------------------------------------------------------------


def _wanted(op: Operation) -> dict[str, Any] | str:
    """The column values `op` sets, or the reason it cannot be applied."""
    values = dict(op.values)
    match op.action:
        case Action.UPDATE_USER:
            unknown = sorted(set(values) - set(_USER_FIELDS))
            if unknown:
                return f"unsupported field {unknown[0]!r}"
            wanted = dict(values)
            if "email" in wanted:
                email = str(wanted["email"]).strip()
                wanted |= {"email": email, "email_key": email_key(email)}
            return wanted
        case Action.RENAME_GROUP:
            name = str(values.get("name") or "").strip()
            return {"name": name, "name_key": name_key(name)}
        case Action.LINK_USER | Action.LINK_GROUP:
            # A SCIM binding also names the id the SCIM client knows the row by.
            return {"managed_by": values.get("managed_by"), "external_id": values.get("external_id"),
                    "scim_id": values.get("scim_id")}
        case Action.UNLINK_USER | Action.UNLINK_GROUP:
            return {"managed_by": None, "external_id": None, "scim_id": None}
        case Action.ACTIVATE_USER:
            return {"active": True}
        case Action.DEACTIVATE_USER:
            return {"active": False}
    raise AssertionError(op.action)


def _change_rows(applier: _Writer, conn: Connection, ops: list[Operation]) -> list[_Result]:
    """Set columns on existing rows; a row already holding the values is a noop. A row
    whose unique key changes is first moved to a placeholder key, so keys can swap."""
    is_user = ops[0].action in USER_ACTIONS
    table, natural, noun = (users, "email_key", "user") if is_user else (groups, "name_key", "group")
    ids = applier.users_of(conn, (op.user for op in ops)) if is_user else applier.groups_of(conn, (op.group for op in ops))
    wanted = [_wanted(op) for op in ops]
    planned_from = {c for op in ops for c, _ in op.old if c in table.c}
    columns = sorted({c for w in wanted if isinstance(w, dict) for c in w} | {natural, *BINDING} | planned_from)
    known = {i for i in ids if i is not None}
    current: dict[int, dict[str, Any]] = {}
    if known:
        rows = _select_in(conn, (table.c.id, *(table.c[c] for c in columns)), table.c.id, known, lock="update")
        current = {row[0]: dict(zip(columns, row[1:])) for row in rows}
    original_keys = {i: row[natural] for i, row in current.items()}

    results: list[_Result] = []
    changes: dict[int, dict[str, Any]] = {}
    for op, row_id, want in zip(ops, ids, wanted):
        if isinstance(want, str):
            results.append((Outcome.FAILED, want))
        elif row_id is None:
            results.append((Outcome.FAILED, f"unresolved {noun} {_ref_of(op)}"))
        elif row_id not in current:
            results.append((Outcome.FAILED, f"{noun} #{row_id} does not exist"))
        else:
            row = current[row_id]
            conflict = applier.binding_conflict(op, is_user, row_id, row)
            diff = {c: v for c, v in want.items() if row[c] != v}
            if conflict is None and diff and _changed_since_planned(op, row, diff):
                conflict = CHANGED
            if conflict is not None:
                results.append((Outcome.CONFLICT, conflict))
                continue
            if not diff:
                results.append((Outcome.NOOP, None))
                continue
            row.update(diff)
            changes.setdefault(row_id, {}).update(diff)
            results.append((Outcome.APPLIED, None))

    moving = [i for i, diff in changes.items() if natural in diff and diff[natural] != original_keys[i]]
    if len(moving) > 1:
        # A leading space never survives trimming, so no real key can collide with these.
        park = update(table).where(table.c.id == bindparam("_id")).values({natural: bindparam("_parked")})
        conn.execute(park, [{"_id": i, "_parked": f" moving {i}"} for i in moving])
    by_columns: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, diff in changes.items():
        by_columns[tuple(sorted(diff))].append({"_id": row_id, **{f"_{c}": v for c, v in diff.items()}})
    for cols, params in by_columns.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(f"_{c}") for c in cols} | {"updated_at": applier.at})
        )
        conn.execute(stmt, params)
    return results


def _revoke_invites(applier: _Writer, conn: Connection, ops: list[Operation]) -> list[_Result]:
    ids = {op.invite_id for op in ops if op.invite_id is not None}
    status = {i: state for i, state in _select_in(conn, (invites.c.id, invites.c.status), invites.c.id, ids)}
    results: list[_Result] = []
    revoke: list[dict[str, Any]] = []
    for op in ops:
        state = status.get(op.invite_id) if op.invite_id is not None else None
        if state is None:
            results.append((Outcome.FAILED, f"invite #{op.invite_id} does not exist"))
        elif state != InviteStatus.OPEN.value:
            results.append((Outcome.NOOP, f"invite already {state}"))
        else:
            status[op.invite_id] = InviteStatus.REVOKED.value
            revoke.append({"_id": op.invite_id})
            results.append((Outcome.APPLIED, None))
    if revoke:
        stmt = (
            update(invites)
            .where(invites.c.id == bindparam("_id"))
            .values(status=InviteStatus.REVOKED.value, updated_at=applier.at)
        )
        conn.execute(stmt, revoke)
    return results
