"""Deciding a staged plan (DESIGN.md S2, section 11): approve exactly what still holds, or reject.

`approve(settings, run_id, by=...)` works under the directory's cycle lock, as a new run
(trigger `approval`, mode `full`): it reads the directory in full through its connector,
plans again, and applies, through `reconcile.apply`, the staged operations that the fresh
plan still contains (in the fresh plan's form, so the write-time checks compare against
today's store). A staged operation the fresh plan no longer contains is dropped with an
event (outcome `rejected`, reason `no-longer-confirmed`): a deactivation the directory no
longer confirms is never applied. Operations the fresh plan adds are left to the next
cycle. R4 is judged again over exactly what is applied: a kept deactivation or removal
that leaned on an activation or add of the fresh plan that was never staged (so would leave
`Administrators` without an active member) is held, with the rejection a cycle records
(`last-active-administrator`, `admin-group-would-be-empty`). The plan is closed as approved
(who, when, by which run).

A push directory (`kind = "scim"`) has no connector to read: its plan holds the
operations of SCIM requests the deactivation limit held (`store.held`, `service.scim_hold`).
Approving it (trigger `approval`, mode `push`) applies, through `reconcile.apply`, every
operation held when the approval starts whose user is still bound to the directory,
against the rows as they are now, so the write-time checks judge what still holds. The
user is the one the request addressed (`store.held_read.addressed_row`): for a request to
`/Users/{id}` the user bound under that SCIM id, whatever their email is now; for a `POST
/Users` the user with its email, whom its own held link binds (a local user it links is
linked, and deactivated, as the request asked, unless someone bound them since). R4 is
judged over exactly what is applied, as for a pull directory: a held deactivation or
removal that would leave `Administrators` without an active member is held with the
planner's rejection, judged against the admin group and its members as stored; the rest of
that user's held changes waits with it (the endpoint writes a request whole or not at
all, and every held request deactivates its user). Operations that no longer hold (the
IdP took the deactivation back, the user is gone or unbound), and the rest of the request
such a deactivation came with, are dropped with an event of reason `no-longer-confirmed`;
a held POST whose user was bound otherwise since (another directory, another SCIM id) is
dropped the same way, whole.
Requests held while the approval runs move to a new open plan: never applied unseen.

`reject(settings, run_id, by=...)` closes the plan without applying anything.

Both raise `NotStaged` when `run_id` is not an open staged plan, and never raise for a
failed read or a busy lock: the result says so and the plan stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from config import Settings
from connectors import Connector, build_connector
from connectors.errors import ConnectorError
from reconcile.apply import ApplyResult, apply
from reconcile.cycle import APPROVAL_TRIGGER, Lock, lease_lock
from reconcile.held_approval import whole_users, with_their_deactivation
from reconcile.model import Action, Operation, Plan, Snapshot
from reconcile.plan import plan
from reconcile.plan_admin import LAST_ACTIVE_ADMINISTRATOR, hold_last_admins_among
from reconcile.plan_groups import find_admin_group
from store import (
    Outcome,
    StagedStatus,
    Store,
    close_interrupted_runs,
    decide,
    finish_run,
    get_directory,
    get_staged,
    load_for_read,
    load_scope,
    open_store,
    record_success,
    staged_operations,
    start_run,
)
from store.events import insert_events, next_seq, operation_event
from store.held import carry_over, last_seq, lock_held
from store.held_read import event_operation, held_operations
from store.staged import NO_LONGER_CONFIRMED, operator_name

log = logging.getLogger("dirsync.staging")

PUSH_KIND = "scim"


class NotStaged(Exception):
    """`run_id` names no open staged plan (never staged, or already decided)."""

    def __init__(self, run_id: int, detail: str) -> None:
        super().__init__(f"run {run_id} is not an open staged plan: {detail}")
        self.run_id = run_id


@dataclass(frozen=True)
class Decision:
    """What `approve` or `reject` did. `status`: approved, rejected, failed (the read or
    the apply failed; the plan stays open unless it was approved), skipped (a cycle of the
    directory holds its lock) or refused (the directory is disabled)."""

    staged_run_id: int
    directory: str
    status: str
    by: str
    run_id: int | None = None
    applied: ApplyResult | None = None
    dropped: tuple[Operation, ...] = field(default=())
    error: str | None = None
    note: str | None = None  # what the decision left for later (R4 holds, requests held while it ran)

    @property
    def ok(self) -> bool:
        return self.status in ("approved", "rejected")


def still_valid(staged: Iterable[Operation], fresh: Plan) -> tuple[tuple[Operation, ...], tuple[Operation, ...]]:
    """(the operations of `fresh` that carry out a staged operation, in `fresh`'s order;
    the staged operations `fresh` no longer contains).

    A staged operation holds when the fresh plan makes the same change to the same rows
    (action, references, new values); what it expects to find may have moved on, and the
    fresh form carries today's expectations.
    """
    wanted = {_change(op): op for op in staged}
    kept = tuple(op for op in fresh.operations if _change(op) in wanted)
    found = {_change(op) for op in kept}
    dropped = tuple(op for key, op in wanted.items() if key not in found)
    return kept, dropped


def approve(
    settings: Settings,
    run_id: int,
    *,
    by: str | None = None,
    store: Store | None = None,
    connector: Connector | None = None,
    lock: Lock | None = None,
) -> Decision:
    """Apply the staged operations of run `run_id` that still hold (see the module notes)."""
    who = by or operator_name()
    own_store = store is None
    store = store or open_store(settings.store.url)
    try:
        directory_name = _open_plan_directory(store, run_id)
        settings.directory(directory_name)  # one no longer configured is a configuration error
        with store.session() as session:
            row = get_directory(session, directory_name)
            enabled = row is None or row.enabled
        if not enabled:
            return Decision(run_id, directory_name, "refused", who,
                            error=f"directory {directory_name!r} is disabled; the plan stays open")
        push = settings.directory(directory_name).kind == PUSH_KIND
        # A push approval holds the store lease, whatever lock it is given: while the lease
        # is live, an `active: true` it may undo is refused (`service.scim_hold`).
        held_by = lease_lock(store, settings.worker.lock_ttl_seconds) if push or lock is None else lock
        with held_by(directory_name) as acquired:
            if not acquired:
                return Decision(run_id, directory_name, "skipped", who,
                                error="a cycle of this directory is running; approve again when it ends")
            _open_plan_directory(store, run_id)  # a cycle may have superseded it meanwhile
            approval = _Approval(settings, store, run_id, directory_name, who)
            if push:
                return approval.run_held()
            return approval.run(connector)
    finally:
        if own_store:
            store.dispose()


def reject(
    settings: Settings,
    run_id: int,
    *,
    by: str | None = None,
    store: Store | None = None,
    lock: Lock | None = None,
) -> Decision:
    """Close the staged plan of run `run_id` without applying anything. It takes the
    directory's cycle lock, so an approval under way is never overtaken."""
    who = by or operator_name()
    own_store = store is None
    store = store or open_store(settings.store.url)
    try:
        directory_name = _open_plan_directory(store, run_id)
        with (lock or lease_lock(store, settings.worker.lock_ttl_seconds))(directory_name) as acquired:
            if not acquired:
                return Decision(run_id, directory_name, "skipped", who,
                                error="a cycle of this directory is running; reject again when it ends")
            with store.session(write=True) as session:
                if not decide(session, run_id, StagedStatus.REJECTED, by=who):
                    raise NotStaged(run_id, _state(session, run_id))
        log.info("staged plan rejected run=%s directory=%s by=%s", run_id, directory_name, who,
                 extra={"directory": directory_name, "run_id": run_id})
        return Decision(run_id, directory_name, "rejected", who)
    finally:
        if own_store:
            store.dispose()


class _Approval:
    def __init__(self, settings: Settings, store: Store, staged_run_id: int, directory: str, by: str) -> None:
        self.settings = settings
        self.store = store
        self.staged_run_id = staged_run_id
        self.name = directory
        self.by = by

    def run(self, connector: Connector | None) -> Decision:
        with self.store.session(write=True) as session:
            close_interrupted_runs(session, self.name)  # we hold the lock: a dead process left them
            run_id = start_run(session, directory=self.name, trigger=APPROVAL_TRIGGER, mode="full",
                               allow_deactivations=True, actor=self.by)
        directory = self.settings.directory(self.name)
        own_connector = connector is None
        try:
            connector = connector or build_connector(self.settings, directory)
            source = connector.read(None)
        except ConnectorError as exc:
            return self._fail(run_id, f"the directory could not be read, nothing applied: {exc}")
        except Exception as exc:  # a bug must not leave the approval run "running" forever
            log.exception("approval read crashed directory=%s", self.name)
            return self._fail(run_id, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if own_connector and connector is not None:
                connector.close()
        if not isinstance(source, Snapshot):
            return self._fail(run_id, "the connector did not return a full read; nothing applied")
        rules = self.settings.to_rules()
        with self.store.session() as session:
            local = load_for_read(session, self.name, source, links=directory.links,
                                  reserved_names=rules.reserved_names)
            row = get_staged(session, self.staged_run_id)
            assert row is not None
            staged = staged_operations(row)
        fresh = plan(source, local, rules, directory=self.name, links=directory.links)
        kept, dropped = still_valid(staged, fresh)
        held_emails = {r.target for r in fresh.rejections if r.reason == LAST_ACTIVE_ADMINISTRATOR}
        held_now = {u.id for u in local.users if u.email in held_emails}
        self._record_dropped(run_id, [(op, _why_dropped(op, held_now, rules.admin_group)) for op in dropped])
        # The fresh plan met R4 as a whole; what is applied is only its staged part.
        confirmed = len(kept)
        kept, held = hold_last_admins_among(kept, find_admin_group(local.groups, rules),
                                            {u.id: u for u in local.users}, rules)
        approved = Plan(self.name, kept, fresh.rejections + tuple(held))
        try:
            outcome = apply(self.store, approved, run_id=run_id, directory=self.name)
        except Exception as exc:
            log.exception("approval apply failed directory=%s", self.name)
            return self._fail(run_id, f"apply failed: {type(exc).__name__}: {exc}")
        with self.store.session(write=True) as session:
            decide(session, self.staged_run_id, StagedStatus.APPROVED, by=self.by, decided_run_id=run_id)
            if len(kept) == len(fresh.operations) and not (outcome.failed or outcome.conflicts):
                # Nothing of the fresh read is left undone (all of it was staged, none of it
                # held by R4): it counts as this directory's full sync.
                record_success(session, self.name, watermark=source.watermark, full=True)
        note = _r4_note(confirmed - len(kept), rules.admin_group, run_id)
        return self._finish(run_id, approved, outcome, dropped, note)

    def run_held(self) -> Decision:
        """Approve a push directory's plan of held requests (see the module notes)."""
        with self.store.session(write=True) as session:
            close_interrupted_runs(session, self.name)  # we hold the lock: a dead process left them
            run_id = start_run(session, directory=self.name, trigger=APPROVAL_TRIGGER, mode="push",
                               allow_deactivations=True, actor=self.by)
            # Read under the lock `withdraw` takes: a withdrawal is in the plan read here,
            # or is refused while this approval holds the lease (`service.scim_hold`).
            lock_held(session, self.name)
            upto = last_seq(session, self.staged_run_id)
        rules = self.settings.to_rules()
        with self.store.session() as session:
            held = held_operations(session, self.staged_run_id, self.name, upto_seq=upto)
            # R4 needs the admin group with its members, and the users the held requests are about.
            local = load_scope(session, self.name, user_ids=(), group_ids=(), group_names=rules.reserved_names,
                               emails={h.user.email for h in held if h.user is not None})
        live, orphaned = with_their_deactivation(held, {u.id: u.active for u in local.users})
        dropped = [(event_operation(h.event, h.user), f"not applied: {h.why_not}") for h in held if h.operation is None]
        self._record_dropped(run_id, dropped + orphaned)
        # Memberships follow the IdP's own group operations in push: R4 holds no removal
        # from another group for a held administrator (keep_groups=False).
        kept, r4 = hold_last_admins_among(tuple(h.operation for h in live if h.operation is not None),
                                          find_admin_group(local.groups, rules), {u.id: u for u in local.users},
                                          rules, keep_groups=False)
        kept, with_them = whole_users(live, kept, rules.admin_group)
        approved = Plan(self.name, kept, tuple(r4) + with_them)
        try:
            outcome = apply(self.store, approved, run_id=run_id, directory=self.name,
                            detail=f"approval of run {self.staged_run_id}")
        except Exception as exc:
            log.exception("approval apply failed directory=%s", self.name)
            return self._fail(run_id, f"apply failed: {type(exc).__name__}: {exc}")
        with self.store.session(write=True) as session:
            lock_held(session, self.name)  # no request is being held into the plan as it closes
            later = carry_over(session, self.staged_run_id, self.name, after_seq=upto)
            decide(session, self.staged_run_id, StagedStatus.APPROVED, by=self.by, decided_run_id=run_id)
        notes = (_r4_note(len(approved.rejections), rules.admin_group, run_id),
                 f"requests held meanwhile wait in the staged plan of run {later}" if later else None)
        return self._finish(run_id, approved, outcome, tuple(op for op, _ in dropped + orphaned),
                            "; ".join(n for n in notes if n) or None)

    def _finish(self, run_id: int, applied: Plan, outcome: ApplyResult, dropped: tuple[Operation, ...],
                note: str | None = None) -> Decision:
        counts = {**applied.counts(), **{f"outcome:{k}": v for k, v in outcome.outcomes.items()},
                  "dropped": len(dropped)}
        unapplied = outcome.failed + outcome.conflicts
        error = (f"{outcome.failed} failed and {outcome.conflicts} conflicted of the approved operations;"
                 f" see `dirsync events {run_id}`") if unapplied else None
        with self.store.session(write=True) as session:
            finish_run(session, run_id, "partial" if unapplied else "succeeded", counts,
                       "; ".join(t for t in (error, note) if t) or None)
        log.info("staged plan approved run=%s directory=%s by=%s applied_in=%s dropped=%d",
                 self.staged_run_id, self.name, self.by, run_id, len(dropped),
                 extra={"directory": self.name, "run_id": run_id})
        return Decision(self.staged_run_id, self.name, "approved", self.by, run_id, outcome, dropped, error, note)

    def _record_dropped(self, run_id: int, dropped: Sequence[tuple[Operation, str]]) -> None:
        with self.store.session(write=True) as session:
            start = next_seq(session, run_id)
            insert_events(session, [
                operation_event(run_id, start + i, op, Outcome.REJECTED, reason=NO_LONGER_CONFIRMED, detail=why)
                for i, (op, why) in enumerate(dropped)
            ])

    def _fail(self, run_id: int, error: str) -> Decision:
        with self.store.session(write=True) as session:
            finish_run(session, run_id, "failed", {}, error)
        log.error("approval failed run=%s directory=%s error=%s", self.staged_run_id, self.name, error,
                  extra={"directory": self.name, "run_id": run_id, "status": "failed"})
        return Decision(self.staged_run_id, self.name, "failed", self.by, run_id, error=error)


def _open_plan_directory(store: Store, run_id: int) -> str:
    with store.session() as session:
        row = get_staged(session, run_id)
        if row is None or row.status != StagedStatus.OPEN.value:
            raise NotStaged(run_id, _state(session, run_id))
        return row.directory


def _state(session: Session, run_id: int) -> str:
    row = get_staged(session, run_id)
    if row is None:
        return "no such staged plan (see `dirsync staged`)"
    by = f" by {row.decided_by}" if row.decided_by else ""
    later = f" (run {row.decided_run_id})" if row.decided_run_id is not None else ""
    return f"{row.status}{by}{later} at {row.decided_at:%Y-%m-%d %H:%M:%SZ}" if row.decided_at else row.status


def _change(op: Operation) -> tuple[object, ...]:
    return (op.action, op.user, op.group, op.invite_id, op.values)


def _r4_note(held: int, admin_group: str, run_id: int) -> str | None:
    """What the decision says of the approved changes R4 held, if any."""
    if not held:
        return None
    return (f"{held} approved change{'s' if held > 1 else ''} held: {admin_group!r} must keep an active member"
            f" (R4); see `dirsync events {run_id}`")


def _why_dropped(op: Operation, held_by_r4: Collection[int], admin_group: str) -> str:
    """Why a staged operation is not applied; `held_by_r4`: the users whose deactivation
    the fresh plan holds as the last active members of `admin_group`."""
    if op.action is Action.DEACTIVATE_USER and op.user is not None and op.user.local_id in held_by_r4:
        return f"held: the user is among the last active members of {admin_group!r} (R4); not applied"
    if op.action is Action.DEACTIVATE_USER:
        return "the directory no longer confirms this deactivation; not applied"
    if op.action is Action.REMOVE_MEMBER:
        return "the directory no longer confirms this removal; not applied"
    return "the directory's fresh plan no longer contains this change; not applied"


__all__ = ["APPROVAL_TRIGGER", "Decision", "NO_LONGER_CONFIRMED", "NotStaged", "PUSH_KIND", "approve", "reject", "still_valid"]
