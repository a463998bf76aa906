"""S2 for push (DESIGN §10): deactivations beyond the limit in a rolling hour are held.

An IdP pushes deactivations one request at a time, so the limit counts the directory's
deactivations applied in the last hour (by `scim` runs) plus the request's own. A
request that would go over `[safety] max_deactivations` (or over
`max_deactivation_ratio` of the directory's active users, for more than `ratio_floor`)
is not applied: it is recorded as a halted run whose events are its operations (outcome
`staged`, detail the request), and answered 503 with `Retry-After` (when the window will
have room again). `approve_held(run)` applies such a run's operations that still hold,
through the guarded write path; `reject_held(run)` closes it. Two requests that pass the
check at the same instant may overshoot the limit by one request's deactivations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from config import Settings
from reconcile import clock
from reconcile.rules import email_key, name_key
from reconcile.apply import ApplyResult, apply
from reconcile.model import Action, Operation, Plan, Ref
from reconcile.push import Problem
from store import RunStatus, Store, count_users, finish_run, get_run, list_events, record_staged, start_run
from store.models import SyncEvent, SyncRun, groups, users

WINDOW = timedelta(hours=1)
HELD_TRIGGER = "scim"
APPROVAL_TRIGGER = "scim-approval"


@dataclass(frozen=True, slots=True)
class HeldRequest:
    run_id: int
    directory: str
    at: datetime
    reason: str
    deactivations: tuple[str, ...]
    request: str | None


def hold_if_over_limit(settings: Settings, store: Store, directory: str, plan: Plan, request: str) -> None:
    """Raise `Problem(503)` after staging `plan` when its deactivations would exceed the limit."""
    planned = sum(1 for op in plan.operations if op.action is Action.DEACTIVATE_USER)
    if not planned:
        return
    limits = settings.safety
    now = clock.now()
    with store.session() as session:
        recent = _recent_deactivations(session, directory, now)
        _, active = count_users(session, directory)
    total = len(recent) + planned
    reason = None
    if total > limits.max_deactivations:
        reason = (f"{total} deactivations in an hour exceed max_deactivations = {limits.max_deactivations}")
        allowed = limits.max_deactivations
    elif active > limits.to_limits().ratio_floor and total > limits.max_deactivation_ratio * active:
        allowed = int(limits.max_deactivation_ratio * active)
        reason = (f"{total} deactivations in an hour are {total / active:.0%} of {active} active users, over"
                  f" max_deactivation_ratio = {limits.max_deactivation_ratio:g}")
    if reason is None:
        return
    with store.session(write=True) as session:
        run_id = start_run(session, directory=directory, trigger=HELD_TRIGGER, mode="push",
                           status=RunStatus.HALTED, at=now)
        record_staged(session, run_id, plan)
        _note_request(session, run_id, request)
        finish_run(session, run_id, RunStatus.HALTED, {"staged": len(plan.operations)},
                   f"halted by a safety limit: {reason}; held request {request}")
    # Room again once enough of the window's deactivations are older than an hour.
    must_expire = max(total - allowed, 1)
    oldest = sorted(recent)[min(must_expire, len(recent)) - 1] if recent else now
    wait = max(1, int((oldest + WINDOW - now).total_seconds()) + 1)
    raise Problem(503, f"S2: {reason}; the request is held as run {run_id} until an admin approves it"
                       f" (dirsync scim approve {run_id})", None, "held", retry_after=wait)


def _recent_deactivations(session: Session, directory: str, now: datetime) -> list[datetime]:
    query = (select(SyncEvent.at).join(SyncRun, SyncRun.id == SyncEvent.run_id)
             .where(SyncRun.directory == directory, SyncRun.trigger == HELD_TRIGGER,
                    SyncRun.started_at >= now - WINDOW - timedelta(hours=1),
                    SyncEvent.action == Action.DEACTIVATE_USER.value, SyncEvent.outcome == "applied",
                    SyncEvent.at > now - WINDOW))
    return list(session.scalars(query))


def _note_request(session: Session, run_id: int, request: str) -> None:
    session.execute(update(SyncEvent).where(SyncEvent.run_id == run_id).values(detail=request))


def held_requests(store: Store, directory: str | None = None) -> list[HeldRequest]:
    """Open held requests (halted `scim` runs), oldest first."""
    with store.session() as session:
        query = select(SyncRun).where(SyncRun.trigger == HELD_TRIGGER, SyncRun.status == RunStatus.HALTED.value)
        if directory is not None:
            query = query.where(SyncRun.directory == directory)
        out = []
        for run in session.scalars(query.order_by(SyncRun.id)):
            events = list_events(session, run.id)
            out.append(HeldRequest(run.id, run.directory, run.started_at, run.error or "",
                                   tuple(e.target for e in events if e.action == Action.DEACTIVATE_USER.value),
                                   events[0].detail if events else None))
    return out


class NotHeld(Exception):
    """The run is not an open held SCIM request."""


def approve_held(settings: Settings, store: Store, run_id: int) -> ApplyResult:
    """Apply held run `run_id`'s operations that still hold (rows still bound to the
    directory as they were), atomically, in a run with trigger `scim-approval`."""
    with store.session() as session:
        run = get_run(session, run_id)
        if run is None or run.trigger != HELD_TRIGGER or run.status != RunStatus.HALTED.value:
            raise NotHeld(f"run {run_id} is not a held SCIM request")
        directory = run.directory
        events = list_events(session, run_id)
        ops = tuple(op for e in events if (op := _operation(session, directory, e)) is not None)
    with store.session(write=True) as session:
        approval = start_run(session, directory=directory, trigger=APPROVAL_TRIGGER, mode="push")
    result = apply(store, Plan(directory, ops), run_id=approval, directory=directory, atomic=True,
                   detail=f"approval of run {run_id}")
    status = RunStatus.SUCCEEDED if not (result.failed or result.conflicts) else RunStatus.PARTIAL
    with store.session(write=True) as session:
        finish_run(session, approval, status, result.counts())
        finish_run(session, run_id, RunStatus.SUCCEEDED if status is RunStatus.SUCCEEDED else RunStatus.FAILED,
                   error=f"approved by run {approval}")
    return result


def reject_held(store: Store, run_id: int) -> None:
    with store.session(write=True) as session:
        run = get_run(session, run_id)
        if run is None or run.trigger != HELD_TRIGGER or run.status != RunStatus.HALTED.value:
            raise NotHeld(f"run {run_id} is not a held SCIM request")
        finish_run(session, run_id, RunStatus.FAILED, error="rejected: the held request was not applied")


def _operation(session: Session, directory: str, event: SyncEvent) -> Operation | None:
    """The staged operation an event records, against the rows as they are now; None for
    an event that is not a staged operation or whose rows are gone."""
    if event.outcome != "staged":
        return None
    action = Action(event.action)
    new = tuple(sorted((event.new or {}).items()))
    old = tuple(sorted((event.old or {}).items()))
    if action in (Action.REMOVE_MEMBER, Action.ADD_MEMBER):
        email = dict(old or new).get("member")
        user = session.execute(select(users.c.id).where(users.c.email_key == email_key(str(email)))).scalar()
        group = session.execute(select(groups.c.id, groups.c.managed_by, groups.c.external_id)
                                .where(groups.c.name_key == name_key(event.target))).first()
        if user is None or group is None:
            return None
        return Operation(action, event.target, group=Ref(local_id=group.id), user=Ref(local_id=int(user)),
                         values=new, old=old)
    row = session.execute(select(users.c.id, users.c.managed_by, users.c.external_id)
                          .where(users.c.email_key == email_key(event.target))).first()
    if row is None:
        return None
    expect = (("external_id", row.external_id), ("managed_by", row.managed_by)) \
        if row.managed_by == directory else (("external_id", dict(old).get("external_id")),
                                             ("managed_by", directory))
    return Operation(action, event.target, user=Ref(local_id=row.id), values=new, old=old, expect=expect)


def deactivations_in_window(store: Store, directory: str, now: datetime | None = None) -> int:
    with store.session() as session:
        return len(_recent_deactivations(session, directory, now or clock.now()))


__all__ = ["HeldRequest", "NotHeld", "approve_held", "deactivations_in_window", "held_requests",
           "hold_if_over_limit", "reject_held"]
