"""Applying a plan: the only code that writes users, groups, memberships and invites.

`apply(store_or_session, plan, run_id=..., directory=...)` promises:

- **Every operation gets exactly one outcome and one `sync_events` row**: `applied`,
  `noop` (the store already says so: applying the same plan twice changes nothing the
  second time; creating a row that exists, by its binding or for a local row by its
  email / name, maps the key to it and changes nothing), or `failed` (with a reason). Every rejection of the plan gets one
  `rejected` event. Events of a run are ordered by `seq`: rejections, then operations in
  plan order.
- **Chunks commit atomically with their events.** Operations are applied in transactions
  of `chunk_size` (default 2,000); a process killed mid-apply leaves the committed chunks
  and nothing of the rest, which a later full plan repairs. `progress(done, total)` is
  called after each commit; an exception it raises stops the apply there. Any error that
  is not one operation's fault (lost connection, locked database) propagates likewise.
- **One bad operation does not sink the others.** When a chunk hits an integrity or data
  error it is rolled back and redone one operation at a time, each under a savepoint; the
  operations that still fail are recorded `failed` with the database's reason.
- **Email and group-name permutations apply.** Any set of email changes (or renames) of
  existing rows whose final state is unique applies, whatever the order: these operations
  commit together, first moving each changing row's unique key aside, then to its final
  value. They are applied before the rest of the plan, so that a new user may take an
  email another user gives up in the same plan.

References: `Ref.local_id` names an existing row. `Ref.key` names a row this plan creates:
the external id it is bound to (directory plans), or its email / group name (local admin
plans, and `local:<name>` in any plan), with separate names for users and groups. A key
not created by this apply call (say, by an earlier, interrupted one) is looked up in the
store by the same rule.

The session's pending work is committed first: `apply` owns the transactions from there.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, bindparam, delete, func, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.expect import BINDING, USER_ACTIONS, written_ref
from reconcile.model import Action, Operation, Plan, Ref
from reconcile.rules import email_key, name_key, text_key
from store.bulk import insert_many
from store.engine import SQLITE_BEGIN, Store
from store.models import InviteStatus, Outcome, directories, groups, invites, memberships, users
from store.runs import insert_events, next_seq, operation_event, rejection_event

CHUNK_SIZE = 2000
# A key naming a local row by its natural key, even in a directory plan (the admin group).
LOCAL_PREFIX = "local:"
Progress = Callable[[int, int], None]

# Errors that belong to one operation (a constraint, a value the column refuses), as
# opposed to errors that end the apply (lost connection, locked database).
_OP_ERRORS = (IntegrityError, DataError)


@dataclass(frozen=True, slots=True)
class Failure:
    """One operation that could not be applied."""

    seq: int
    action: Action
    target: str
    reason: str
    outcome: Outcome = Outcome.FAILED


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did: counts per outcome (`applied`, `noop`, `failed`, `rejected`),
    per action and outcome, and the failures themselves."""

    outcomes: Mapping[str, int] = field(default_factory=dict)
    actions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()
    # Why the apply stopped before its end (the directory was disabled or re-enabled).
    aborted: str | None = None

    @property
    def applied(self) -> int:
        return self.outcomes.get(Outcome.APPLIED.value, 0)

    @property
    def noop(self) -> int:
        return self.outcomes.get(Outcome.NOOP.value, 0)

    @property
    def failed(self) -> int:
        return self.outcomes.get(Outcome.FAILED.value, 0)

    @property
    def rejected(self) -> int:
        return self.outcomes.get(Outcome.REJECTED.value, 0)

    @property
    def conflicts(self) -> int:
        return self.outcomes.get(Outcome.CONFLICT.value, 0)

    def counts(self) -> dict[str, int]:
        """Flat counts for a run row: every outcome, and `<action>.<outcome>` pairs."""
        flat = {o.value: self.outcomes.get(o.value, 0) for o in Outcome if o is not Outcome.STAGED}
        for action, per in self.actions.items():
            for outcome, n in per.items():
                flat[f"{action}.{outcome}"] = n
        return dict(sorted(flat.items()))


def apply(
    target: Store | Session,
    plan: Plan,
    *,
    run_id: int | None,
    directory: str | None = None,
    progress: Progress | None = None,
    chunk_size: int | None = None,
    generation: int | None = None,
    checkpoint: Callable[[], None] | None = None,
    atomic: bool = False,
    detail: str | None = None,
) -> ApplyResult:
    """Apply `plan` to the store (see the module notes for the promises).

    `target`: a `Store` (a session is opened and closed here) or a `Session` (committed
    chunk by chunk, left open). `run_id`: the run the events belong to (None for local
    admin actions). `directory`: whose external ids the plan's keys are; defaults to
    `plan.directory`. `generation`: the directory's generation the writer started under;
    each transaction first checks the directory is still enabled at it, else the apply
    stops (`ApplyResult.aborted`). `checkpoint`: called before each transaction (a cycle
    checks it still holds its lock there); what it raises stops the apply. `atomic`: all
    or nothing, in one transaction (see the module notes). `detail`: text every event of
    this apply carries (a SCIM request's method and path).
    """
    chunk_size = CHUNK_SIZE if chunk_size is None else chunk_size  # read now: tests may change it
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if isinstance(target, Store):
        with target.session(write=True) as session:
            return apply(session, plan, run_id=run_id, directory=directory, progress=progress,
                         chunk_size=chunk_size, generation=generation, checkpoint=checkpoint,
                         atomic=atomic, detail=detail)
    applier = _Applier(target, run_id, directory if directory is not None else plan.directory, generation)
    applier.detail = detail
    if atomic:
        return applier.run_atomic(plan, checkpoint)
    return applier.run(plan, progress, chunk_size, checkpoint)


# --- orchestration -------------------------------------------------------------------------

_Result = tuple[Outcome, str | None]
_Indexed = tuple[int, Operation]

_USER_FIELDS = ("email", "given_name", "family_name", "display_name")
_MOVES = {Action.UPDATE_USER: "email", Action.RENAME_GROUP: "name"}

# Conflict reasons (docs/rules.md).
CHANGED = "changed-since-planned"
OTHER_OWNER = "owned-by-other-directory"
MANAGED = "managed"
DISABLED = "directory-disabled"
ADMIN_EMPTY = "admin-group-would-be-empty"
# An operation of an all-or-nothing plan that was not written because another one was not.
REQUEST_REFUSED = "request-refused"


class DirectoryChanged(Exception):
    """The directory was disabled or re-enabled since the writer started."""


class _Refused(Exception):
    """An all-or-nothing plan has an operation that cannot be written: roll back."""


class _AdminWouldBeEmpty(Exception):
    """The transaction would commit the admin group without an active member."""

    def __init__(self, offending: set[int]) -> None:
        super().__init__("the admin group would be left without an active member")
        self.offending = offending


class _Applier:
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

    def run(self, plan: Plan, progress: Progress | None, chunk_size: int,
            checkpoint: Callable[[], None] | None) -> ApplyResult:
        self.session.commit()
        ops = list(enumerate(plan.operations))
        self._note_own_bindings(plan.operations)
        # User moves, then group moves: each kind must form one batch for swaps to work.
        moves = sorted(((i, op) for i, op in ops if _is_move(op)), key=lambda m: m[1].action is Action.RENAME_GROUP)
        moved = {i for i, _ in moves}
        rest = [(i, op) for i, op in ops if i not in moved]
        chunks: list[tuple[list[_Indexed], bool]] = [(moves, True)] if moves else []
        chunks += [(rest[n : n + chunk_size], False) for n in range(0, len(rest), chunk_size)]

        with self._transaction() as conn:
            base = next_seq(conn, self.run_id)
        self.op_seq = base + len(plan.rejections)
        pending_rejections = [
            rejection_event(self.run_id, base + i, r, at=self.at) for i, r in enumerate(plan.rejections)
        ]
        if pending_rejections:
            self.outcomes[Outcome.REJECTED.value] += len(pending_rejections)

        done, total = 0, len(ops)
        aborted: str | None = None
        if not chunks and pending_rejections:
            with self._transaction() as conn:
                insert_events(conn, pending_rejections)
        for n, (chunk, is_moves) in enumerate(chunks):
            if checkpoint is not None:
                checkpoint()
            try:
                self._apply_chunk(chunk, is_moves, pending_rejections)
            except DirectoryChanged as exc:
                aborted = str(exc)
                self._record_unapplied([item for c, _ in chunks[n:] for item in c], pending_rejections, aborted)
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
        moves = [(i, op) for i, op in ops if _is_move(op)]
        rest = [(i, op) for i, op in ops if not _is_move(op)]
        if checkpoint is not None:
            checkpoint()
        self.at = clock.now()
        self._journal = []
        results: dict[int, _Result] = {}
        refused: dict[int, _Result] = {}
        aborted: str | None = None
        try:
            with self._transaction() as conn:
                base = next_seq(conn, self.run_id)
                self.op_seq = base + len(plan.rejections)
                self._check_directory(conn)
                admin = _AdminGuard.open(conn, ops)
                for part in (moves, rest):
                    if part:
                        results.update(zip((i for i, _ in part), self._in_batches(conn, part)))
                if admin is not None:
                    admin.check(conn, self, ops, set())
                refused = {i: r for i, r in results.items() if r[0] in (Outcome.FAILED, Outcome.CONFLICT)}
                if refused:
                    raise _Refused()
                events = [rejection_event(self.run_id, base + n, r, at=self.at) for n, r in enumerate(plan.rejections)]
                insert_events(conn, events + self._events(ops, [results[i] for i, _ in ops]))
        except _Refused:
            pass
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
                insert_events(conn, events + self._events(ops, [results[i] for i, _ in ops]))
        if plan.rejections:
            self.outcomes[Outcome.REJECTED.value] += len(plan.rejections)
        self._count(ops, [results[i] for i, _ in ops])
        return ApplyResult(
            outcomes=dict(self.outcomes),
            actions={a: dict(c) for a, c in sorted(self.actions.items())},
            failures=tuple(sorted(self.failures, key=lambda f: f.seq)),
            aborted=aborted,
        )

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
            yield self.session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
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
        retries = 0
        while True:
            self.at = clock.now()
            self._journal = []
            try:
                with self._transaction() as conn:
                    results = self._guarded(conn, chunk, excluded, is_moves, one_by_one)
                    insert_events(conn, extra_events + self._events(chunk, results))
            except _AdminWouldBeEmpty as exc:
                self._forget_new_keys()
                if exc.offending <= excluded:
                    raise AssertionError("the admin group check excluded nothing") from exc
                excluded |= exc.offending
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
                time.sleep(random.uniform(0.01, 0.05) * retries)
                continue
            except BaseException:
                self._forget_new_keys()
                raise
            break
        self._count(chunk, results)

    def _guarded(
        self, conn: Connection, chunk: list[_Indexed], excluded: set[int], is_moves: bool, one_by_one: bool
    ) -> list[_Result]:
        """The chunk's writes between the checks every transaction makes: the directory
        is still enabled at the writer's generation, and the admin group keeps an active
        member (checked under a lock on its row, taken before anything is written)."""
        self._check_directory(conn)
        admin = _AdminGuard.open(conn, chunk)
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

    def _check_directory(self, conn: Connection) -> None:
        if self.generation is None or self.directory is None:
            return
        query = select(directories.c.enabled, directories.c.generation).where(directories.c.name == self.directory)
        if conn.dialect.name == "postgresql":
            # Shared: cycles' chunks don't wait on each other; enable/disable (an UPDATE
            # of this row) waits for the chunk, and the chunk after it sees the change.
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        if row is None or not row.enabled:
            raise DirectoryChanged(f"directory {self.directory!r} was disabled while this cycle ran")
        if row.generation != self.generation:
            raise DirectoryChanged(f"directory {self.directory!r} was disabled and enabled again while this cycle ran")

    def _record_unapplied(self, items: list[_Indexed], extra_events: list[dict[str, Any]], reason: str) -> None:
        """Operations an aborted apply never wrote still get their one outcome."""
        results: list[_Result] = [(Outcome.CONFLICT, DISABLED)] * len(items)
        with self._transaction() as conn:
            insert_events(conn, extra_events + self._events(items, results))
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

    def _events(self, chunk: list[_Indexed], results: list[_Result]) -> list[dict[str, Any]]:
        return [
            operation_event(self.run_id, self.op_seq + index, op, outcome, reason=reason, detail=self.detail,
                            at=self.at)
            for (index, op), (outcome, reason) in zip(chunk, results, strict=True)
        ]

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
        expected = dict(op.expect) if op.expect else ({} if self.directory is not None else dict.fromkeys(BINDING))
        if not expected:
            return None
        now = tuple(row[c] for c in BINDING)
        if now == tuple(expected.get(c) for c in BINDING) or now in self.own_bindings.get((is_user, row_id), ()):
            return None
        owner = row["managed_by"]
        if self.directory is None:
            return MANAGED if owner is not None else CHANGED
        return OTHER_OWNER if owner is not None and owner != self.directory else CHANGED

    def remember(self, keys: dict[str, int], key: str, row_id: int) -> None:
        """Map `key` to `row_id`, undoably: a rolled-back chunk's rows do not exist."""
        self._journal.append((keys, key, keys.get(key)))
        keys[key] = row_id

    def _forget_new_keys(self) -> None:
        for keys, key, previous in reversed(self._journal):
            if previous is None:
                keys.pop(key, None)
            else:
                keys[key] = previous
        self._journal = []

    def users_of(self, conn: Connection, refs: Iterable[Ref | None]) -> list[int | None]:
        return self._resolve(conn, refs, self.user_keys, users, "email_key")

    def groups_of(self, conn: Connection, refs: Iterable[Ref | None]) -> list[int | None]:
        return self._resolve(conn, refs, self.group_keys, groups, "name_key")

    def _resolve(
        self, conn: Connection, refs: Iterable[Ref | None], keys: dict[str, int], table: Table, natural: str
    ) -> list[int | None]:
        refs = list(refs)
        unknown = {r.key for r in refs if r is not None and r.local_id is None and r.key is not None} - keys.keys()
        if unknown:
            for key, row_id in _lookup_keys(conn, table, natural, self.directory, unknown).items():
                self.remember(keys, key, row_id)
        out: list[int | None] = []
        for ref in refs:
            if ref is None:
                out.append(None)
            elif ref.local_id is not None:
                out.append(ref.local_id)
            else:
                out.append(keys.get(ref.key) if ref.key is not None else None)
        return out


@dataclass(frozen=True)
class _AdminGuard:
    """R4 inside one transaction: the reserved admin group's row is locked (PostgreSQL;
    SQLite holds the database write lock already) before anything is written, and after
    the writes it must still have an active member if it had one before."""

    group_id: int
    active_before: frozenset[int]

    @staticmethod
    def open(conn: Connection, chunk: list[_Indexed]) -> _AdminGuard | None:
        # Every transaction that may write the admin group's row or its members, or
        # deactivate one of them, takes the group's lock first: one lock order for all
        # writers (a link of the alias taken after user rows would otherwise deadlock
        # with an admin action that holds the group and waits for a user).
        if not any(op.action in _TOUCH_ADMIN for _, op in chunk):
            return None
        query = select(groups.c.id).where(groups.c.reserved.is_(True)).order_by(groups.c.id).limit(1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        group_id = conn.execute(query).scalar()
        if group_id is None or not any(op.action in _MAY_EMPTY_ADMIN for _, op in chunk):
            return None
        active = frozenset(conn.execute(_active_members(group_id, users.c.id)).scalars())
        return _AdminGuard(group_id, active) if active else None

    def check(self, conn: Connection, applier: _Applier, chunk: list[_Indexed], excluded: set[int]) -> None:
        left = conn.execute(_active_members(self.group_id, func.count())).scalar()
        if left:
            return
        offending: set[int] = set()
        for n, (_, op) in enumerate(chunk):
            if n in excluded:
                continue
            if op.action is Action.REMOVE_MEMBER and applier.groups_of(conn, [op.group])[0] == self.group_id:
                offending.add(n)
            elif op.action is Action.DEACTIVATE_USER and applier.users_of(conn, [op.user])[0] in self.active_before:
                offending.add(n)
        raise _AdminWouldBeEmpty(offending)


_MAY_EMPTY_ADMIN = (Action.REMOVE_MEMBER, Action.DEACTIVATE_USER)
_REBINDS = frozenset({Action.LINK_USER, Action.LINK_GROUP, Action.UNLINK_USER, Action.UNLINK_GROUP})
_TOUCH_ADMIN = frozenset({
    *_MAY_EMPTY_ADMIN, Action.ADD_MEMBER, Action.CREATE_GROUP, Action.RENAME_GROUP, Action.LINK_GROUP,
    Action.UNLINK_GROUP,
})


def _active_members(group_id: int, column: ColumnElement[Any]) -> Any:
    return (
        select(column)
        .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
        .where(memberships.c.group_id == group_id, users.c.active.is_(True))
    )


def _is_move(op: Operation) -> bool:
    ref = op.user if op.action is Action.UPDATE_USER else op.group
    name = _MOVES.get(op.action)
    return name is not None and ref is not None and ref.local_id is not None and name in dict(op.values)


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
        query = select(*columns).where(column.in_(ordered[start : start + _IN_SLICE]), *where)
        if lock is not None and conn.dialect.name == "postgresql":
            query = query.order_by(column).with_for_update(read=lock == "share")
        yield from conn.execute(query)


# Deadlock detected, serialization failure: the transaction was rolled back and may run again.
_RETRY_STATES = frozenset({"40P01", "40001"})
_RETRIES = 5


def _must_retry(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRY_STATES


def _reason(exc: Exception) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    kind = "conflict" if isinstance(exc, IntegrityError) else "invalid value"
    return f"{kind}: {detail[0] if detail else type(exc).__name__}"[:500]


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


# --- creating rows ---------------------------------------------------------------------------


def _create_users(applier: _Applier, conn: Connection, ops: list[Operation]) -> list[_Result]:
    rows = []
    for op in ops:
        v = dict(op.values)
        email = str(v.get("email") or "").strip()
        rows.append(
            {
                "email": email,
                "email_key": email_key(email),
                "given_name": v.get("given_name"),
                "family_name": v.get("family_name"),
                "display_name": v.get("display_name"),
                "active": bool(v.get("active", True)),
                "managed_by": v.get("managed_by"),
                "external_id": v.get("external_id"),
                "scim_id": v.get("scim_id"),
            }
        )
    keys = [_key(op.user, r, "email") for op, r in zip(ops, rows)]
    return _create(applier, conn, users, "email_key", rows, keys, applier.user_keys)


def _create_groups(applier: _Applier, conn: Connection, ops: list[Operation]) -> list[_Result]:
    rows = []
    for op in ops:
        v = dict(op.values)
        name = str(v.get("name") or "").strip()
        rows.append(
            {
                "name": name,
                "name_key": name_key(name),
                "managed_by": v.get("managed_by"),
                "external_id": v.get("external_id"),
                "reserved": bool(v.get("reserved", False)),
                "scim_id": v.get("scim_id"),
            }
        )
    keys = [_key(op.group, r, "name") for op, r in zip(ops, rows)]
    return _create(applier, conn, groups, "name_key", rows, keys, applier.group_keys)


def _key(ref: Ref | None, row: Mapping[str, Any], natural: str) -> str:
    """The key later operations use for a created row: its Ref's, else the external id
    it is bound to, else its natural key."""
    if ref is not None and ref.key:
        return ref.key
    return str(row["external_id"] if row["external_id"] is not None else row[natural])


def _create(
    applier: _Applier,
    conn: Connection,
    table: Table,
    natural: str,
    rows: list[dict[str, Any]],
    keys: list[str],
    key_map: dict[str, int],
) -> list[_Result]:
    """Insert the rows that do not exist yet, by binding (managed_by, external_id) or, for
    local rows, by natural key; every key ends up mapped to its row."""
    def identity(row: Mapping[str, Any]) -> tuple[Any, ...]:
        if row["external_id"] is not None:
            return ("bound", row["managed_by"], row["external_id"])
        return ("local", row[natural])

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
    local = [r for r in rows if r["external_id"] is None]
    if local:
        found = _select_in(conn, (table.c.id, table.c[natural]), table.c[natural], {r[natural] for r in local})
        existing.update((("local", k), int(i)) for i, k in found)

    results: list[_Result] = []
    new_rows: list[dict[str, Any]] = []
    first_of: dict[tuple[Any, ...], int] = {}
    for n, row in enumerate(rows):
        ident = identity(row)
        if ident in existing or ident in first_of:
            results.append((Outcome.NOOP, None))
        elif ident[0] == "bound" and row[natural] in taken:
            results.append((Outcome.CONFLICT, CHANGED))
        else:
            taken.add(row[natural])
            first_of[ident] = len(new_rows)
            new_rows.append({**row, "created_at": applier.at, "updated_at": applier.at})
            results.append((Outcome.APPLIED, None))
    if new_rows:
        insert_many(conn, table, new_rows)
        # The natural key is unique, so it finds each new row's id; one indexed select is
        # far cheaper than RETURNING through SQLAlchemy's row-by-row executemany.
        created = _select_in(conn, (table.c[natural], table.c.id), table.c[natural], [r[natural] for r in new_rows])
        new_ids: dict[str, int] = {str(k): int(i) for k, i in created}
        for ident, position in first_of.items():
            existing[ident] = new_ids[new_rows[position][natural]]
    for row, key, (outcome, _) in zip(rows, keys, results):
        if outcome is not Outcome.CONFLICT:
            applier.remember(key_map, key, existing[identity(row)])
    return results


def _create_invites(applier: _Applier, conn: Connection, ops: list[Operation]) -> list[_Result]:
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


def _change_rows(applier: _Applier, conn: Connection, ops: list[Operation]) -> list[_Result]:
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


def _changed_since_planned(op: Operation, row: Mapping[str, Any], diff: Mapping[str, Any]) -> bool:
    """A field the operation changes holds neither the value it was planned from nor the
    new one: someone else wrote it since (no lost update)."""
    return any(name in diff and name in row and row[name] != value for name, value in op.old)


def _revoke_invites(applier: _Applier, conn: Connection, ops: list[Operation]) -> list[_Result]:
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


# --- memberships -----------------------------------------------------------------------------


def _members(applier: _Applier, conn: Connection, ops: list[Operation]) -> list[_Result]:
    adding = ops[0].action is Action.ADD_MEMBER
    group_ids = applier.groups_of(conn, (op.group for op in ops))
    user_ids = applier.users_of(conn, (op.user for op in ops))
    wanted_groups = {g for g in group_ids if g is not None}
    wanted_users = {u for u in user_ids if u is not None}
    bindings: dict[int, dict[str, Any]] = {}
    if wanted_groups:
        rows = _select_in(conn, (groups.c.id, groups.c.managed_by, groups.c.external_id), groups.c.id,
                          wanted_groups, lock="share")
        bindings = {i: {"managed_by": owner, "external_id": ext} for i, owner, ext in rows}
    present: set[tuple[int, int]] = set()
    if wanted_groups and wanted_users:
        m = memberships.c
        rows = _select_in(conn, (m.group_id, m.user_id), m.user_id, wanted_users, m.group_id.in_(wanted_groups))
        present = {(g, u) for g, u in rows}
    results: list[_Result] = []
    writes: list[dict[str, int]] = []
    for op, group_id, user_id in zip(ops, group_ids, user_ids):
        if group_id is None or user_id is None:
            missing = f"group {op.group}" if group_id is None else f"user {op.user}"
            results.append((Outcome.FAILED, f"unresolved {missing}"))
            continue
        conflict = applier.binding_conflict(op, False, group_id, bindings[group_id]) if group_id in bindings else None
        if conflict is not None:
            results.append((Outcome.CONFLICT, conflict))
            continue
        pair = (group_id, user_id)
        if (pair in present) is adding:
            results.append((Outcome.NOOP, None))
            continue
        if adding:
            present.add(pair)
            writes.append({"group_id": group_id, "user_id": user_id})
        else:
            present.discard(pair)
            writes.append({"_group": group_id, "_user": user_id})
        results.append((Outcome.APPLIED, None))
    if writes and adding:
        insert_many(conn, memberships, writes)
    elif writes:
        stmt = delete(memberships).where(
            and_(memberships.c.group_id == bindparam("_group"), memberships.c.user_id == bindparam("_user"))
        )
        conn.execute(stmt, writes)
    return results



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
