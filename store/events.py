"""Events: the provisioning log's rows, one per operation or rejection of a run.

Each carries a `seq` that orders it within its run (rejections first, then the plan's
operations in plan order) and the keys of the user and group it is about, which the log's
pages look events up by. `insert_operation_events` builds a chunk's rows column by column
for the apply; `operation_event` and `rejection_event` build one row each. Functions work
in the caller's session or connection and do not commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.model import Action, Kind, Operation, Pairs, Plan, Rejection
from reconcile.rules import email_key, name_key
from store.bulk import insert_columns, insert_many
from store.models import Outcome, sync_events

REJECT_ACTION = "reject"

_KIND_OF_ACTION = {
    Action.CREATE_USER: Kind.USER,
    Action.UPDATE_USER: Kind.USER,
    Action.LINK_USER: Kind.USER,
    Action.UNLINK_USER: Kind.USER,
    Action.ACTIVATE_USER: Kind.USER,
    Action.DEACTIVATE_USER: Kind.USER,
    Action.CREATE_GROUP: Kind.GROUP,
    Action.RENAME_GROUP: Kind.GROUP,
    Action.LINK_GROUP: Kind.GROUP,
    Action.UNLINK_GROUP: Kind.GROUP,
    Action.ADD_MEMBER: Kind.MEMBERSHIP,
    Action.REMOVE_MEMBER: Kind.MEMBERSHIP,
    Action.CREATE_INVITE: Kind.INVITE,
    Action.REVOKE_INVITE: Kind.INVITE,
}


# Plain strings, looked up once: enum `.value` is slow at hundreds of thousands of events.
_ACTION_TEXT = {action: action.value for action in Action}
_KIND_TEXT = {action: kind.value for action, kind in _KIND_OF_ACTION.items()}
_OUTCOME_TEXT = {outcome: outcome.value for outcome in Outcome}


def kind_of(action: Action) -> Kind:
    """The kind of record `action` changes."""
    return _KIND_OF_ACTION[action]


def next_seq(conn: Connection | Session, run_id: int | None) -> int:
    """The first free `seq` of run `run_id` (1 for a new run; 1 for runless events too,
    which are ordered by id)."""
    if run_id is None:
        return 1
    top = conn.execute(select(func.max(sync_events.c.seq)).where(sync_events.c.run_id == run_id)).scalar()
    return int(top or 0) + 1


def operation_event(
    run_id: int | None,
    seq: int,
    op: Operation,
    outcome: Outcome,
    *,
    reason: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The `sync_events` row for one operation: old -> new from `op.old` / `op.values`;
    `reason` (an outcome's, such as a failure's) or else the plan's own `op.reason`."""
    user_key, group_key = _operation_subjects(op)
    return {
        "run_id": run_id,
        "seq": seq,
        "action": _ACTION_TEXT[op.action],
        "kind": _KIND_TEXT[op.action],
        "target": op.target,
        "outcome": _OUTCOME_TEXT[outcome],
        "reason": reason if reason is not None else op.reason,
        "detail": detail,
        "old": _jsonable(op.old) if op.old else None,
        "new": _jsonable(op.values) if op.values else None,
        "at": at or clock.now(),
        "user_key": user_key,
        "group_key": group_key,
    }


def rejection_event(
    run_id: int | None, seq: int, rejection: Rejection, *, at: datetime | None = None
) -> dict[str, Any]:
    """The `sync_events` row for one rejection (action `reject`, outcome `rejected`)."""
    return {
        "run_id": run_id,
        "seq": seq,
        "action": REJECT_ACTION,
        "kind": rejection.kind.value,
        "target": rejection.target,
        "outcome": Outcome.REJECTED.value,
        "reason": rejection.reason,
        "detail": rejection.detail or None,
        "old": None,
        "new": {"external_id": rejection.external_id} if rejection.external_id else None,
        "at": at or clock.now(),
        **_rejection_subjects(rejection),
    }


def _operation_subjects(op: Operation) -> tuple[str | None, str | None]:
    """The user and group an operation's event is about, by their keys: (user, group)."""
    kind = _KIND_OF_ACTION[op.action]
    if kind is Kind.MEMBERSHIP:
        member = _member(op.values) or _member(op.old)
        return (email_key(str(member)) if member else None), _group_key(op.target)
    if kind is Kind.GROUP:
        return None, _group_key(op.target)
    return email_key(op.target), None


# A large plan names each group in thousands of membership events: key each name once.
_group_key = lru_cache(maxsize=4096)(name_key)


def _member(pairs: Iterable[tuple[str, object]]) -> object:
    for name, value in pairs:
        if name == "member":
            return value
    return None


def _rejection_subjects(rejection: Rejection) -> dict[str, str | None]:
    if rejection.kind is Kind.MEMBERSHIP:
        group, _, member = rejection.target.partition(": ")
        return {"user_key": email_key(member) if member else None, "group_key": name_key(group)}
    if rejection.kind is Kind.GROUP:
        return {"user_key": None, "group_key": name_key(rejection.target)}
    if rejection.kind in (Kind.USER, Kind.INVITE):
        return {"user_key": email_key(rejection.target), "group_key": None}
    return {"user_key": None, "group_key": None}


def insert_events(conn: Connection | Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert event rows (as built by `operation_event` / `rejection_event`) in one batch."""
    if rows:
        insert_many(conn.connection() if isinstance(conn, Session) else conn, sync_events, rows)


# The columns of an event row, in the order `operation_event` builds them.
_EVENT_COLUMNS = ("run_id", "seq", "action", "kind", "target", "outcome", "reason", "detail", "old", "new", "at",
                  "user_key", "group_key")
_JSON_COLUMNS = frozenset({"old", "new"})


def insert_operation_events(
    conn: Connection,
    run_id: int | None,
    ops: Iterable[tuple[int, Operation]],
    results: Iterable[tuple[Outcome, str | None]],
    *,
    detail: str | None = None,
    at: datetime,
    before: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Insert one event per (seq, operation) and its (outcome, reason), after the rows
    `before` (rejections), in one batch: the rows `operation_event` builds, built column
    by column. A plan shares value pairs among its operations (a user's
    add-member value), so each distinct pair tuple is keyed and serialised once."""
    dialect = conn.dialect
    process_json = sync_events.c.new.type._cached_bind_processor(dialect)

    def json_of(value: Any) -> Any:
        return None if value is None or process_json is None else process_json(value)

    columns: dict[str, list[Any]] = {
        name: [json_of(row[name]) if name in _JSON_COLUMNS else row[name] for row in before] for name in _EVENT_COLUMNS
    }
    seq, action, kind, target, outcome_, reason_, old, new, user_key, group_key = (
        columns[c]
        for c in ("seq", "action", "kind", "target", "outcome", "reason", "old", "new", "user_key", "group_key")
    )
    # id(pairs), or for a member's address its text -> (the pairs, kept so that the id is
    # not reused; their JSON; the member they name). A plan makes a user's add-member
    # values again for each group that gains them: one address, one serialisation.
    seen: dict[object, tuple[object, Any, object]] = {}

    def serialised(pairs: Pairs) -> tuple[Any, object]:
        if not pairs:
            return None, None
        key: object = id(pairs)
        if len(pairs) == 1 and pairs[0][0] == "member" and type(pairs[0][1]) is str:
            key = pairs[0][1]
        found = seen.get(key)
        if found is None:
            found = seen[key] = (pairs, json_of(_jsonable(pairs)), _member(pairs))
        return found[1], found[2]

    member_keys: dict[str, str] = {}
    count = 0
    for (number, op), (outcome, reason) in zip(ops, results, strict=True):
        count += 1
        seq.append(number)
        act = op.action
        kind_of_op = _KIND_OF_ACTION[act]
        action.append(_ACTION_TEXT[act])
        kind.append(_KIND_TEXT[act])
        target.append(op.target)
        outcome_.append(_OUTCOME_TEXT[outcome])
        reason_.append(reason if reason is not None else op.reason)
        old_json, old_member = serialised(op.old)
        new_json, new_member = serialised(op.values)
        old.append(old_json)
        new.append(new_json)
        # As `_operation_subjects`.
        if kind_of_op is Kind.MEMBERSHIP:
            member = new_member or old_member
            if member:
                text = str(member)
                key = member_keys.get(text)
                if key is None:
                    key = member_keys[text] = email_key(text)
                user_key.append(key)
            else:
                user_key.append(None)
            group_key.append(_group_key(op.target))
        elif kind_of_op is Kind.GROUP:
            user_key.append(None)
            group_key.append(_group_key(op.target))
        else:
            user_key.append(email_key(op.target))
            group_key.append(None)
    columns["run_id"] += [run_id] * count
    columns["detail"] += [detail] * count
    columns["at"] += [at] * count
    insert_columns(conn, sync_events, columns, bound=_JSON_COLUMNS)


def record_rejections(
    session: Session, run_id: int | None, rejections: Iterable[Rejection]
) -> int:
    """One `rejected` event per rejection; returns how many were written."""
    start = next_seq(session, run_id)
    at = clock.now()
    rows = [rejection_event(run_id, start + i, r, at=at) for i, r in enumerate(rejections)]
    insert_events(session, rows)
    return len(rows)


def record_staged(session: Session, run_id: int | None, plan: Plan) -> int:
    """Record a plan the guard halted: one `rejected` event per rejection and one
    `staged` event per operation, nothing applied. Returns the number of events."""
    start = next_seq(session, run_id)
    at = clock.now()
    rows = [rejection_event(run_id, start + i, r, at=at) for i, r in enumerate(plan.rejections)]
    staged = [(Outcome.STAGED, None)] * len(plan.operations)
    insert_operation_events(session.connection(), run_id, enumerate(plan.operations, start + len(rows)), staged,
                            at=at, before=rows)
    return len(rows) + len(staged)


def _jsonable(pairs: Iterable[tuple[str, object]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if value is None or isinstance(value, (str, int, float, bool)):
            out[name] = value
        else:
            # Sets, datetimes, enums: keep the event readable rather than fail the apply.
            try:
                json.dumps(value)
                out[name] = value
            except TypeError:
                out[name] = sorted(map(str, value)) if isinstance(value, (set, frozenset)) else str(value)
    return out
