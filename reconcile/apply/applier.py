"""Running a plan's operations: key moves first, then the rest in chunks (or everything
in one transaction when atomic), each transaction committing its writes with their events;
a chunk hit by a constraint or value error redone one operation at a time, one chosen to
give way in a deadlock run again; outcomes counted once committed; the keys mapped in a
transaction forgotten when it rolls back."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.apply.checks import (
    ADMIN_EMPTY,
    DISABLED,
    REQUEST_REFUSED,
    DirectoryChanged,
    _AdminGuard,
    _AdminLockNeeded,
    _AdminWouldBeEmpty,
    _binding_conflict,
    _check_directory,
    _REBINDS,
    _RESERVED_GROUP_ID,
)
from reconcile.apply.lookup import _MOVES, _find_cycle, _is_move, _lookup_keys
from reconcile.apply.members import _members
from reconcile.apply.result import ApplyResult, Failure, _Indexed, _Result
from reconcile.apply.rows import _change_rows, _create_groups, _create_invites, _create_users, _revoke_invites
from reconcile.expect import BINDING, USER_ACTIONS, written_ref
from reconcile.model import Action, Operation, Plan, Ref
from store.engine import SQLITE_BEGIN, enlarge_page_cache
from store.models import Outcome, groups, users
from store.runs import insert_events, insert_operation_events, next_seq, rejection_event

Progress = Callable[[int, int], None]

# Errors that belong to one operation (a constraint, a value the column refuses), as
# opposed to errors that end the apply (lost connection, locked database).
_OP_ERRORS = (IntegrityError, DataError)


class _Refused(Exception):
    """An all-or-nothing plan has an operation that cannot be written: roll back."""

    def __init__(self, results: dict[int, _Result]) -> None:
        super().__init__("an operation of an all-or-nothing plan was refused")
        self.results = results


class _Applier:
    """One apply call's state: the keys mapped so far (undoably, per transaction), the
    counts and failures of committed work, and the transactions themselves."""

    def __init__(self, session: Session, run_id: int | None, directory: str | None, generation: int | None) -> None:
        self.session = session
        self.run_id = run_id
        self.directory = directory
        self.generation = generation
        self.user_keys: dict[str, int] = {}
        self.group_keys: dict[str, int] = {}
        self.outcomes: Counter[str] = Counter()
        self.actions: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.failures: list[Failure] = []
        self.at: datetime = clock.now()
        self.op_seq = 1
        self.detail: str | None = None
        # (map, key, previous id) for every key mapped in the current chunk.
        self._journal: list[tuple[dict[str, int], str, int | None]] = []
        # Bindings this plan itself gives existing rows (its links and unlinks), which its
        # other operations on those rows may find already in place: (is_user, row id) ->
        # bindings.
        self.own_bindings: defaultdict[tuple[bool, int], set[tuple[object, ...]]] = defaultdict(set)
        self._admin_group_id: int | None = None
        # A plan of many chunks: its transactions get a larger page cache.
        self.large = False

    def run(self, plan: Plan, progress: Progress | None, chunk_size: int,
            checkpoint: Callable[[], None] | None) -> ApplyResult:
        self.session.commit()
        self._note_own_bindings(plan.operations)
        # User moves, then group moves: each kind must form one batch for swaps to work.
        moves = sorted(((i, op) for i, op in enumerate(plan.operations) if _is_move(op)),
                       key=lambda m: m[1].action is Action.RENAME_GROUP)
        # Chunks are cut as they are reached: a large plan is not copied into a second list.
        chunks: Iterator[tuple[list[_Indexed], bool]] = chain(
            [(moves, True)] if moves else [],
            ((chunk, False) for chunk in _chunked(plan.operations, {i for i, _ in moves}, chunk_size)),
        )

        with self._transaction() as conn:
            base = next_seq(conn, self.run_id)
        self.op_seq = base + len(plan.rejections)
        pending_rejections = [
            rejection_event(self.run_id, base + i, r, at=self.at) for i, r in enumerate(plan.rejections)
        ]
        if pending_rejections:
            self.outcomes[Outcome.REJECTED.value] += len(pending_rejections)

        done, total = 0, len(plan.operations)
        aborted: str | None = None
        if not total and pending_rejections:
            with self._transaction() as conn:
                insert_events(conn, pending_rejections)
        for chunk, is_moves in chunks:
            if checkpoint is not None:
                checkpoint()
            try:
                self._apply_chunk(chunk, is_moves, pending_rejections)
            except DirectoryChanged as exc:
                aborted = str(exc)
                self._record_unapplied(chunk + [item for c, _ in chunks for item in c], pending_rejections, aborted)
                break
            pending_rejections = []
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        return ApplyResult(
            outcomes=dict(self.outcomes),
            actions={a: dict(c) for a, c in sorted(self.actions.items())},
            failures=tuple(sorted(self.failures, key=lambda f: f.seq)),
            aborted=aborted,
        )

    def run_atomic(self, plan: Plan, checkpoint: Callable[[], None] | None) -> ApplyResult:
        """The whole plan in one transaction, or nothing of it (`apply(atomic=True)`)."""
        self.session.commit()
        ops = list(enumerate(plan.operations))
        self._note_own_bindings(plan.operations)
        if checkpoint is not None:
            checkpoint()
        self.at = clock.now()
        results: dict[int, _Result] = {}
        refused: dict[int, _Result] = {}
        aborted: str | None = None
        try:
            results = self._write_atomically_again_if_needed(plan, ops)
        except _Refused as exc:
            refused = exc.results
        except _AdminWouldBeEmpty as exc:
            refused = {ops[n][0]: (Outcome.CONFLICT, ADMIN_EMPTY) for n in exc.offending}
        except DirectoryChanged as exc:
            aborted = str(exc)
            refused = {i: (Outcome.CONFLICT, DISABLED) for i, _ in ops}
        except _OP_ERRORS as exc:
            refused = {i: (Outcome.FAILED, _reason(exc)) for i, _ in ops}
        finally:
            if refused or aborted:
                self._forget_new_keys()
        if refused:
            results = {i: refused.get(i, (Outcome.CONFLICT, REQUEST_REFUSED)) for i, _ in ops}
            with self._transaction() as conn:
                base = next_seq(conn, self.run_id)
                self.op_seq = base + len(plan.rejections)
                events = [rejection_event(self.run_id, base + n, r, at=self.at) for n, r in enumerate(plan.rejections)]
                self._insert_events(conn, ops, [results[i] for i, _ in ops], events)
        if plan.rejections:
            self.outcomes[Outcome.REJECTED.value] += len(plan.rejections)
        self._count(ops, [results[i] for i, _ in ops])
        return ApplyResult(
            outcomes=dict(self.outcomes),
            actions={a: dict(c) for a, c in sorted(self.actions.items())},
            failures=tuple(sorted(self.failures, key=lambda f: f.seq)),
            aborted=aborted,
        )

    def _write_atomically_again_if_needed(self, plan: Plan, ops: list[_Indexed]) -> dict[int, _Result]:
        """`_write_atomically`, run again under the admin group's lock when its check asks
        for it, and again when the database made it give way in a deadlock (nothing of it
        was written), as a chunk of a cycle is."""
        lock_admin = False
        retries = 0
        while True:
            try:
                return self._write_atomically(plan, ops, lock_admin)
            except _AdminLockNeeded:
                self._forget_new_keys()
                lock_admin = True
            except DBAPIError as exc:
                self._forget_new_keys()
                if isinstance(exc, _OP_ERRORS) or not _must_retry(exc) or retries >= _RETRIES:
                    raise
                retries += 1
                _back_off(retries)

    def _write_atomically(self, plan: Plan, ops: list[_Indexed], lock_admin: bool) -> dict[int, _Result]:
        """The plan's writes and events in one transaction, each operation's result by
        position; `_Refused` (nothing written) when any operation is refused."""
        self._journal = []
        results: dict[int, _Result] = {}
        with self._transaction() as conn:
            base = next_seq(conn, self.run_id)
            self.op_seq = base + len(plan.rejections)
            _check_directory(conn, self.directory, self.generation)
            admin = _AdminGuard.open(conn, self, ops, lock_admin)
            for moves in (True, False):
                part = [(i, op) for i, op in ops if _is_move(op) is moves]
                if part:
                    results.update(zip((i for i, _ in part), self._in_batches(conn, part)))
            if admin is not None:
                admin.check(conn, self, ops, set())
            refused = {i: r for i, r in results.items() if r[0] in (Outcome.FAILED, Outcome.CONFLICT)}
            if refused:
                raise _Refused(refused)
            events = [rejection_event(self.run_id, base + n, r, at=self.at) for n, r in enumerate(plan.rejections)]
            self._insert_events(conn, ops, [results[i] for i, _ in ops], events)
        return results

    def _note_own_bindings(self, operations: Iterable[Operation]) -> None:
        for op in operations:
            ref = written_ref(op)
            if op.action in _REBINDS and ref is not None and ref.local_id is not None:
                values = dict(op.values)
                self.own_bindings[(op.action in USER_ACTIONS, ref.local_id)].add(tuple(values.get(c) for c in BINDING))

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One committed transaction on the session, write-locked from its start on SQLite."""
        try:
            conn = self.session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
            if self.large:
                enlarge_page_cache(conn)
            yield conn
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise

    def _apply_chunk(self, chunk: list[_Indexed], is_moves: bool, extra_events: list[dict[str, Any]]) -> None:
        """One transaction for the chunk: in bulk, else (a constraint or value error) one
        operation at a time. A chunk that would leave the admin group without an active
        member is redone without the operations that would (R4)."""
        excluded: set[int] = set()
        one_by_one = False
        lock_admin = False
        retries = 0
        while True:
            self.at = clock.now()
            self._journal = []
            try:
                with self._transaction() as conn:
                    results = self._guarded(conn, chunk, excluded, is_moves, one_by_one, lock_admin)
                    self._insert_events(conn, chunk, results, extra_events)
            except _AdminWouldBeEmpty as exc:
                self._forget_new_keys()
                if exc.offending <= excluded:
                    raise AssertionError("the admin group check excluded nothing") from exc
                excluded |= exc.offending
                lock_admin = True
                continue
            except _AdminLockNeeded:
                self._forget_new_keys()
                lock_admin = True
                continue
            except _OP_ERRORS:
                self._forget_new_keys()
                if one_by_one:
                    raise
                one_by_one = True
                continue
            except DBAPIError as exc:
                # Two writers that locked rows in opposite orders: the database chose this
                # one to give way (nothing of it was written). Run the chunk again.
                self._forget_new_keys()
                if not _must_retry(exc) or retries >= _RETRIES:
                    raise
                retries += 1
                _back_off(retries)
                continue
            except BaseException:
                self._forget_new_keys()
                raise
            break
        self._count(chunk, results)

    def _guarded(
        self, conn: Connection, chunk: list[_Indexed], excluded: set[int], is_moves: bool, one_by_one: bool,
        lock_admin: bool,
    ) -> list[_Result]:
        """The chunk's writes between the checks every transaction makes: the directory
        is still enabled at the writer's generation, and the admin group keeps an active
        member (checked under a lock on its row, taken before anything is written, when
        the chunk may touch the group, or always with `lock_admin`)."""
        _check_directory(conn, self.directory, self.generation)
        admin = _AdminGuard.open(conn, self, chunk, lock_admin)
        todo = [item for n, item in enumerate(chunk) if n not in excluded]
        if not todo:
            done: list[_Result] = []
        elif one_by_one and is_moves:
            done = self._moves_one_by_one(conn, todo)
        elif one_by_one:
            done = [self._one(conn, item) for item in todo]
        else:
            done = self._in_batches(conn, todo)
        if admin is not None:
            admin.check(conn, self, chunk, excluded)
        results = iter(done)
        return [(Outcome.CONFLICT, ADMIN_EMPTY) if n in excluded else next(results) for n in range(len(chunk))]

    def _record_unapplied(self, items: list[_Indexed], extra_events: list[dict[str, Any]], reason: str) -> None:
        """Operations an aborted apply never wrote still get their one outcome."""
        results: list[_Result] = [(Outcome.CONFLICT, DISABLED)] * len(items)
        with self._transaction() as conn:
            self._insert_events(conn, items, results, extra_events)
        self._count(items, results)

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

    def _insert_events(self, conn: Connection, chunk: list[_Indexed], results: list[_Result],
                       before: list[dict[str, Any]]) -> None:
        """The rows `before` (rejections), then one event per operation of `chunk`, numbered by
        its place in the plan."""
        base = self.op_seq
        insert_operation_events(conn, self.run_id, ((base + index, op) for index, op in chunk), results,
                                detail=self.detail, at=self.at, before=before)

    def _count(self, chunk: list[_Indexed], results: list[_Result]) -> None:
        """Counted once the chunk is committed, so a redone chunk counts once."""
        pairs = Counter((op.action, outcome) for (_, op), (outcome, _) in zip(chunk, results, strict=True))
        for (action, outcome), n in pairs.items():
            self.outcomes[outcome.value] += n
            self.actions[action.value][outcome.value] += n
        for (index, op), (outcome, reason) in zip(chunk, results):
            if outcome in (Outcome.FAILED, Outcome.CONFLICT):
                text = reason or outcome.value
                self.failures.append(Failure(self.op_seq + index, op.action, op.target, text, outcome))

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


def _chunked(operations: Sequence[Operation], skip: set[int], size: int) -> Iterator[list[_Indexed]]:
    """The operations not in `skip`, with their positions, in lists of `size`."""
    chunk: list[_Indexed] = []
    for item in enumerate(operations):
        if item[0] in skip:
            continue
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Deadlock detected, serialization failure: the transaction was rolled back and may run again.
_RETRY_STATES = frozenset({"40P01", "40001"})
_RETRIES = 5


def _must_retry(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRY_STATES


def _back_off(retries: int) -> None:
    """A short random wait, longer each time, so two writers that deadlocked do not meet again."""
    time.sleep(random.uniform(0.01, 0.05) * retries)


def _reason(exc: Exception) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    kind = "conflict" if isinstance(exc, IntegrityError) else "invalid value"
    return f"{kind}: {detail[0] if detail else type(exc).__name__}"[:500]


_Handler = Callable[[_Applier, Connection, list[Operation]], list[_Result]]
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
