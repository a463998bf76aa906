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

Inside, by job: `applier` runs the operations (chunks, retries, events, counts), `writer`
hands a transaction's operations to the handlers by action and resolves the references they
name, `checks` makes the write-time checks and names the conflict reasons, `rows` and
`members` write, `lookup` finds rows, `result` holds what an apply returns.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from reconcile.apply.applier import Progress, _Applier
from reconcile.apply.checks import (
    ADMIN_EMPTY,
    CHANGED,
    DISABLED,
    MANAGED,
    OTHER_OWNER,
    REQUEST_REFUSED,
    DirectoryChanged,
)
from reconcile.apply.lookup import LOCAL_PREFIX
from reconcile.apply.result import ApplyResult, Failure
from reconcile.heap import long_lived
from reconcile.model import Plan
from store.engine import Store

__all__ = [
    "ADMIN_EMPTY",
    "CHANGED",
    "CHUNK_SIZE",
    "DISABLED",
    "LOCAL_PREFIX",
    "MANAGED",
    "OTHER_OWNER",
    "REQUEST_REFUSED",
    "ApplyResult",
    "DirectoryChanged",
    "Failure",
    "Progress",
    "apply",
]

CHUNK_SIZE = 2000


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
    if len(plan.operations) <= chunk_size:
        return applier.run(plan, progress, chunk_size, checkpoint)
    # A plan of many chunks: the collector leaves it (and whatever else is alive) alone, and
    # its transactions get a larger page cache.
    applier.large = True
    with long_lived():
        return applier.run(plan, progress, chunk_size, checkpoint)
