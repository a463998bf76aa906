"""Running a plan's operations: key moves first, then the rest in chunks (or everything
in one transaction when atomic), each transaction committing its writes with their events;
a chunk hit by a constraint or value error redone one operation at a time, one chosen to
give way in a deadlock run again; outcomes counted once committed; the keys mapped in a
transaction forgotten when it rolls back."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
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
    _check_directory,
    _REBINDS,
)
from reconcile.apply.lookup import _MOVES, _is_move
from reconcile.apply.result import ApplyResult, Failure, _Indexed, _Result
from reconcile.apply.writer import _OP_ERRORS, _reason, _Writer
from reconcile.model import Action, Operation, Plan, of_actions
from store.engine import SQLITE_BEGIN, enlarge_page_cache
from store.events import insert_events, insert_operation_events, next_seq, rejection_event
from store.models import Outcome

Progress = Callable[[int, int], None]


class _Refused(Exception):
    """An all-or-nothing plan has an operation that cannot be written: roll back."""

    def __init__(self, results: dict[int, _Result]) -> None:
        super().__init__("an operation of an all-or-nothing plan was refused")
        self.results = results


class _Applier(_Writer):
    """One apply call's state: the counts and failures of committed work, and the
    transactions themselves; the writes in them, and the keys they map, are `_Writer`'s."""

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
        self._note_own_bindings(op for _, op in of_actions(plan.operations, _REBINDS))
        # User moves, then group moves: each kind must form one batch for swaps to work.
        moves = sorted(((i, op) for i, op in of_actions(plan.operations, _MOVES.keys()) if _is_move(op)),
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
