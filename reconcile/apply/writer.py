"""One transaction's writes, for the applier that runs them: its operations handed to the
handlers (`rows`, `members`) by action, runs of one action in bulk, or after a failed bulk
attempt one at a time under savepoints (key moves repeated while they progress, then
permutation cycles as a whole); and what the handlers ask back: the row a reference names
(a key looked up once, then mapped undoably), whether a row is bound as planned (this plan's
own links included), the reserved admin group's id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DataError, IntegrityError

from reconcile.apply.checks import _binding_conflict, _REBINDS, _RESERVED_GROUP_ID
from reconcile.apply.lookup import _MOVES, _find_cycle, _lookup_keys
from reconcile.apply.members import _members
from reconcile.apply.result import _Indexed, _Result
from reconcile.apply.rows import _change_rows, _create_groups, _create_invites, _create_users, _revoke_invites
from reconcile.expect import BINDING, USER_ACTIONS, written_ref
from reconcile.model import Action, Operation, Ref
from store.models import Outcome, groups, users

# Errors that belong to one operation (a constraint, a value the column refuses), as
# opposed to errors that end the apply (lost connection, locked database).
_OP_ERRORS = (IntegrityError, DataError)


class _Writer:
    """The writing half of one apply call: the keys it mapped (undoably, per transaction),
    the bindings its own links give, and the writes of a transaction. `_Applier`, which runs
    the transactions, is the one subclass and sets this state in its `__init__`."""

    directory: str | None
    # When the current transaction writes: the rows' created_at / updated_at.
    at: datetime
    user_keys: dict[str, int]
    group_keys: dict[str, int]
    # (map, key, previous id) for every key mapped in the current transaction.
    _journal: list[tuple[dict[str, int], str, int | None]]
    # Bindings this plan itself gives existing rows: (is_user, row id) -> bindings.
    own_bindings: defaultdict[tuple[bool, int], set[tuple[object, ...]]]
    _admin_group_id: int | None

    def _note_own_bindings(self, operations: Iterable[Operation]) -> None:
        for op in operations:
            ref = written_ref(op)
            if op.action in _REBINDS and ref is not None and ref.local_id is not None:
                values = dict(op.values)
                self.own_bindings[(op.action in USER_ACTIONS, ref.local_id)].add(tuple(values.get(c) for c in BINDING))

    def _in_batches(self, conn: Connection, chunk: list[_Indexed]) -> list[_Result]:
        """Runs of consecutive operations with the same action, each run in bulk."""
        results: list[_Result] = []
        start = 0
        while start < len(chunk):
            action = chunk[start][1].action
            end = start
            while end < len(chunk) and chunk[end][1].action is action:
                end += 1
            results += _HANDLERS[action](self, conn, [op for _, op in chunk[start:end]])
            start = end
        return results

    def _one(self, conn: Connection, item: _Indexed) -> _Result:
        _, op = item
        try:
            with conn.begin_nested():
                return _HANDLERS[op.action](self, conn, [op])[0]
        except _OP_ERRORS as exc:
            return Outcome.FAILED, _reason(exc)

    def _moves_one_by_one(self, conn: Connection, chunk: list[_Indexed]) -> list[_Result]:
        """Key changes after the bulk attempt failed: apply what can be applied directly,
        repeating while that makes progress (chains), then permutation cycles as a whole;
        what is left fails with its own error."""
        results: dict[int, _Result] = {}
        errors: dict[int, str] = {}
        pending = list(range(len(chunk)))
        while pending:
            progressed = False
            for n in list(pending):
                outcome = self._one(conn, chunk[n])
                if outcome[0] is Outcome.FAILED:
                    errors[n] = outcome[1] or "failed"
                    continue
                results[n] = outcome
                pending.remove(n)
                progressed = True
            if progressed or not pending:
                continue
            members = self._a_cycle(conn, chunk, pending)
            if not members:
                break
            try:
                with conn.begin_nested():
                    ops = [chunk[n][1] for n in members]
                    outcomes = _HANDLERS[ops[0].action](self, conn, ops)
            except _OP_ERRORS:
                break
            for n, outcome in zip(members, outcomes):
                results[n] = outcome
                pending.remove(n)
        for n in pending:
            results[n] = (Outcome.FAILED, errors.get(n, "failed"))
        return [results[n] for n in range(len(chunk))]

    @staticmethod
    def _a_cycle(conn: Connection, chunk: list[_Indexed], pending: list[int]) -> list[int]:
        """Positions in `chunk` of one permutation cycle among the pending moves, if any."""
        for action in _MOVES:
            same = [n for n in pending if chunk[n][1].action is action]
            cycle = _find_cycle(conn, [chunk[n][1] for n in same]) if same else []
            if cycle:
                return [same[c] for c in cycle]
        return []

    def binding_conflict(self, op: Operation, is_user: bool, row_id: int, row: Mapping[str, Any]) -> str | None:
        """Why `op` must not write row `row_id` as it is now (None when it may): the row
        is bound otherwise than when the operation was planned, and not by this plan's
        own link. A local (admin) plan writes only rows no directory manages (R5)."""
        return _binding_conflict(op, is_user, row_id, row, self.directory, self.own_bindings)

    def remember(self, keys: dict[str, int], key: str, row_id: int) -> None:
        """Map `key` to `row_id`, undoably: a rolled-back chunk's rows do not exist."""
        self._journal.append((keys, key, keys.get(key)))
        keys[key] = row_id

    def remember_all(self, keys: dict[str, int], pairs: Iterable[tuple[str, int]]) -> None:
        """`remember` for many (key, row id) pairs."""
        journal = self._journal
        for key, row_id in pairs:
            journal.append((keys, key, keys.get(key)))
            keys[key] = row_id

    def _forget_new_keys(self) -> None:
        for keys, key, previous in reversed(self._journal):
            if previous is None:
                keys.pop(key, None)
            else:
                keys[key] = previous
        self._journal = []

    def admin_group_id(self, conn: Connection) -> int | None:
        """The reserved admin group's row, read once it exists: it keeps its flag and no
        writer deletes a group, so the id holds for the rest of the apply."""
        if self._admin_group_id is None:
            self._admin_group_id = conn.execute(_RESERVED_GROUP_ID).scalar()
        return self._admin_group_id

    def users_of(self, conn: Connection, refs: Iterable[Ref | None]) -> list[int | None]:
        return self._resolve(conn, refs, self.user_keys, users, "email_key")

    def groups_of(self, conn: Connection, refs: Iterable[Ref | None]) -> list[int | None]:
        return self._resolve(conn, refs, self.group_keys, groups, "name_key")

    def _resolve(
        self, conn: Connection, refs: Iterable[Ref | None], keys: dict[str, int], table: Table, natural: str
    ) -> list[int | None]:
        out: list[int | None] = []
        missing: list[tuple[int, str]] = []  # (position, key) of keys not mapped yet
        for ref in refs:
            if ref is None:
                out.append(None)
            elif ref.local_id is not None:
                out.append(ref.local_id)
            elif ref.key is None:
                out.append(None)
            else:
                row_id = keys.get(ref.key)
                if row_id is None:
                    missing.append((len(out), ref.key))
                out.append(row_id)
        if missing:
            unknown = {key for _, key in missing}
            for key, row_id in _lookup_keys(conn, table, natural, self.directory, unknown).items():
                self.remember(keys, key, row_id)
            for n, key in missing:
                out[n] = keys.get(key)
        return out


def _reason(exc: Exception) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    kind = "conflict" if isinstance(exc, IntegrityError) else "invalid value"
    return f"{kind}: {detail[0] if detail else type(exc).__name__}"[:500]


_Handler = Callable[[_Writer, Connection, list[Operation]], list[_Result]]
_HANDLERS: dict[Action, _Handler] = {
    Action.CREATE_USER: _create_users,
    Action.UPDATE_USER: _change_rows,
    Action.LINK_USER: _change_rows,
    Action.UNLINK_USER: _change_rows,
    Action.ACTIVATE_USER: _change_rows,
    Action.DEACTIVATE_USER: _change_rows,
    Action.CREATE_GROUP: _create_groups,
    Action.RENAME_GROUP: _change_rows,
    Action.LINK_GROUP: _change_rows,
    Action.UNLINK_GROUP: _change_rows,
    Action.ADD_MEMBER: _members,
    Action.REMOVE_MEMBER: _members,
    Action.CREATE_INVITE: _create_invites,
    Action.REVOKE_INVITE: _revoke_invites,
}
