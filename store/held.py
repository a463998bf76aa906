"""Held SCIM requests (S2 for push, DESIGN §10): a push directory's open staged plan.

A pull cycle stages its whole plan at once; an IdP pushes one request at a time. So a push
directory, like every directory, has at most one open staged plan, and each request the
deactivation limit holds adds its operations to it: `staged` events of the plan's run
(detail: the request's method and path), appended, never rewritten, so a burst of
thousands of held requests costs each request its own few rows. An operation already
held is not added again (the IdP retries what it was answered 503). The plan's row keeps
the limit and the reason of the first held request; its serialised `operations` stay
empty: the run's `staged` events are the plan (`store.staged.plan_views` lists any plan
from its events).

Which user a held operation is about is the user its request addressed, not the email
its event names (the user's email when it was held: a later request may rename the user,
and someone else may take that email). A request to `/Users/{id}` addressed a SCIM
resource: its events are about the user the directory binds under that id, read from the
request's label (`reconcile.push_label.addressed_user`). A `POST /Users` addressed an email:
its events are about the user with that email, and when it links a user (a local one, not
yet managed) its own held link is what binds them, so the request holds, whole, while the
user is bound as it found them or as its link binds them, and is dropped, whole, once
they are bound otherwise (`store.held_read`). The IdP's retry of a held request is not held again
when it makes the same change to the same user, found the same way: held from a request
to the same SCIM id, or from a POST of the same email (`already_held`).

A held deactivation the IdP takes back (it sends `active: true` for the user) is
*withdrawn*: an event of outcome `rejected`, reason `no-longer-confirmed`, follows the
staged one in the plan's run and names it (`store.staged.withdrawals`: two users' held
deactivations can read alike, held under the same email); the user's deactivation is no
longer held, and a later one is held anew. The user is found as above: by the SCIM id
the request addressed, or by the email a POST named (a `POST /Users` that says `active:
true` withdraws a held POST's deactivation of its email). `store.held_read.held_operations` reads a plan
up to a point (an approval reads what is held when it starts); `carry_over` moves what
was held after that point into a new open plan, so a request held while an approval runs
is neither applied unseen nor lost.

Functions work in the caller's session and do not commit; call the writing ones inside a
write transaction after `lock_held` (PostgreSQL: an advisory lock per directory; SQLite:
the write transaction already holds the database's write lock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.model import Action, Operation, Plan
from reconcile.push_label import addressed_user
from reconcile.rules import email_key
from store.events import insert_events, next_seq, operation_event
from store.models import Outcome, RunStatus, StagedPlan, StagedStatus, SyncEvent, SyncRun
from store.runs import finish_run, start_run
from store.staged import (
    NO_LONGER_CONFIRMED,
    change_key,
    event_change,
    held_about,
    keys_held_for,
    limit_name,
    live_events,
    staged_deactivations,
    withdrawal_detail,
    withdrawals,
)

HELD_TRIGGER = "scim"
HELD_MODE = "push"
_DEACTIVATE = Action.DEACTIVATE_USER.value


@dataclass(frozen=True, slots=True)
class HeldPlan:
    """A push directory's open plan as the limit check needs it."""

    run_id: int
    deactivations: int  # held now (withdrawn ones not counted)


def lock_held(session: Session, directory: str) -> None:
    """Serialise the writers of `directory`'s held requests (two held requests at once
    must not open two plans, nor an approval close one a request is adding to)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"dirsync:held:{directory}"})


def open_held_plan(session: Session, directory: str) -> HeldPlan | None:
    """`directory`'s open plan with its count of held deactivations, or None."""
    run_id = session.scalar(select(StagedPlan.run_id).where(
        StagedPlan.directory == directory, StagedPlan.status == StagedStatus.OPEN.value).order_by(StagedPlan.run_id))
    if run_id is None:
        return None
    return HeldPlan(int(run_id), staged_deactivations(session, [int(run_id)])[int(run_id)])


def already_held(session: Session, run_id: int, operations: Iterable[Operation], request: str) -> set[int]:
    """The positions in `operations` (of request `request`) of those plan `run_id` holds
    already, not withdrawn, from a request about the same user: for a request to
    `/Users/{id}`, the same change held from a request to that id (under whichever email
    the user had then: the IdP's retry after a rename), never one held for another id
    under the same email (whoever took the email since is another user); for a `POST
    /Users`, the same change to the same email held from a POST."""
    ops = list(operations)
    scim_id = addressed_user(request)
    if scim_id is not None:
        user_keys, group_keys = keys_held_for(session, run_id, scim_id), set()
    else:
        keys = {_subjects(op) for op in ops}
        user_keys = {u for u, _ in keys if u is not None}
        group_keys = {g for u, g in keys if u is None and g is not None}
    conditions = []
    if user_keys:  # a withdrawal carries its staged event's user key: `live_events` finds both
        conditions.append(SyncEvent.user_key.in_(user_keys))
    if group_keys:
        conditions.append(SyncEvent.group_key.in_(group_keys))
    if not conditions:
        return set()
    events = session.scalars(select(SyncEvent).where(SyncEvent.run_id == run_id, or_(*conditions))
                             .order_by(SyncEvent.seq))
    live = [e for e in live_events(events) if addressed_user(e.detail) == scim_id]
    if scim_id is not None:
        held = {_addressed_change(e) for e in live}
        return {n for n, op in enumerate(ops) if _op_addressed_change(op, scim_id) in held}
    held = {event_change(e) for e in live}
    return {n for n, op in enumerate(ops) if _op_change(op) in held}


def hold(session: Session, *, directory: str, plan: Plan, reason: str, request: str,
         at: datetime | None = None) -> tuple[int, int]:
    """Add `plan`'s operations that are not held yet to `directory`'s open plan, opening
    one (a halted `scim` run and its staged-plan row) when there is none. Returns (the
    plan's run id, operations added). Call under `lock_held`."""
    now = at or clock.now()
    found = open_held_plan(session, directory)
    if found is None:
        run_id = start_run(session, directory=directory, trigger=HELD_TRIGGER, mode=HELD_MODE,
                           status=RunStatus.HALTED, at=now)
        finish_run(session, run_id, RunStatus.HALTED, {}, f"halted by a safety limit: {reason}", at=now)
        session.add(StagedPlan(run_id=run_id, directory=directory, status=StagedStatus.OPEN.value, created_at=now,
                               safety_limit=limit_name(reason), reason=reason, operations=[], deactivations=[],
                               removals=[]))
        session.flush()
    else:
        run_id = found.run_id
    skip = already_held(session, run_id, plan.operations, request)
    new = [op for n, op in enumerate(plan.operations) if n not in skip]
    start = next_seq(session, run_id)
    insert_events(session, [operation_event(run_id, start + i, op, Outcome.STAGED, detail=request, at=now)
                            for i, op in enumerate(new)])
    run = session.get(SyncRun, run_id)
    if run is not None and new:
        run.counts = {**(run.counts or {}), "staged": int((run.counts or {}).get("staged", 0)) + len(new)}
        run.finished_at = now
    return run_id, len(new)


def withdraw(session: Session, directory: str, scim_id: str, emails: Iterable[str], request: str,
             at: datetime | None = None) -> int | None:
    """The IdP says user `scim_id` is active (`request`; `emails`: the ones the user had
    before it and has now): its held deactivations in `directory`'s open plan are
    withdrawn: the one a request to `/Users/{scim_id}` holds (under whichever email the
    user had then), and one a `POST /Users` of one of `emails` holds. Returns the plan's
    run id when one was. Call under `lock_held`."""
    found = open_held_plan(session, directory)
    if found is None or not found.deactivations:
        return None
    keys = {email_key(e) for e in emails}
    # Its withdrawals are found with the staged events: they carry the same user key.
    user_keys = keys | keys_held_for(session, found.run_id, scim_id)
    events = session.scalars(select(SyncEvent).where(SyncEvent.run_id == found.run_id,
                                                     SyncEvent.action == _DEACTIVATE,
                                                     SyncEvent.user_key.in_(user_keys)).order_by(SyncEvent.seq))
    held = [e for e in live_events(events) if held_about(e, keys, scim_id)]
    if not held:
        return None
    start = next_seq(session, found.run_id)
    insert_events(session, [{
        "run_id": found.run_id, "seq": start + n, "action": _DEACTIVATE, "kind": event.kind,
        "target": event.target, "outcome": Outcome.REJECTED.value, "reason": NO_LONGER_CONFIRMED,
        "detail": withdrawal_detail(event.seq, f"{request} says the user is active"),
        "old": event.old, "new": event.new,
        "at": at or clock.now(), "user_key": event.user_key, "group_key": None,
    } for n, event in enumerate(held)])
    return found.run_id


def last_seq(session: Session, run_id: int) -> int:
    return next_seq(session, run_id) - 1


def carry_over(session: Session, run_id: int, directory: str, *, after_seq: int, at: datetime | None = None) -> int | None:
    """Move what plan `run_id` took in after `after_seq` (requests held while it was being
    approved) into a new open plan; its run id, or None when there was nothing. Call
    under `lock_held`, before closing plan `run_id`."""
    events = list(session.scalars(select(SyncEvent).where(SyncEvent.run_id == run_id).order_by(SyncEvent.seq)))
    # A withdrawal of an event held before `after_seq` stays with it: a plan carried over
    # must never count a withdrawal without what it withdraws.
    # (Few stay: the update names them, and takes the rest by range, whatever their number.)
    stay = {withdrawal.seq for withdrawal, staged in withdrawals(events) if staged.seq <= after_seq}
    if all(e.seq <= after_seq or e.seq in stay for e in events):
        return None
    old = session.get(StagedPlan, run_id)
    now = at or clock.now()
    new_run = start_run(session, directory=directory, trigger=HELD_TRIGGER, mode=HELD_MODE,
                        status=RunStatus.HALTED, at=now)
    reason = old.reason if old is not None else "held while an approval ran"
    moved = session.execute(update(SyncEvent).where(SyncEvent.run_id == run_id, SyncEvent.seq > after_seq,
                                                    SyncEvent.seq.not_in(stay)).values(run_id=new_run))
    finish_run(session, new_run, RunStatus.HALTED, {"staged": int(getattr(moved, "rowcount", 0) or 0)},
               f"halted by a safety limit: {reason} (held while run {run_id} was being approved)", at=now)
    session.add(StagedPlan(run_id=new_run, directory=directory, status=StagedStatus.OPEN.value, created_at=now,
                           safety_limit=old.safety_limit if old is not None else limit_name(reason),
                           reason=reason, operations=[], deactivations=[], removals=[]))
    session.flush()
    return new_run


# --- internal ------------------------------------------------------------------------------------


def _subjects(op: Operation) -> tuple[str | None, str | None]:
    event = operation_event(None, 0, op, Outcome.STAGED)
    return event["user_key"], event["group_key"]


def _op_change(op: Operation) -> tuple[Any, ...]:
    event = operation_event(None, 0, op, Outcome.STAGED)
    return change_key(event["action"], event["target"], event["user_key"], event["group_key"], event["new"])


def _addressed_change(event: SyncEvent) -> tuple[Any, ...] | None:
    """What `event` changes of the user its request addressed by SCIM id (None for a POST)."""
    scim_id = addressed_user(event.detail)
    return None if scim_id is None else _id_change(event.action, scim_id, event.group_key, event.new)


def _op_addressed_change(op: Operation, scim_id: str) -> tuple[Any, ...]:
    event = operation_event(None, 0, op, Outcome.STAGED)
    return _id_change(event["action"], scim_id, event["group_key"], event["new"])


def _id_change(action: str, scim_id: str, group_key: str | None, new: dict[str, Any] | None) -> tuple[Any, ...]:
    """A change to the user SCIM id `scim_id`, whatever its email (see `change_key`)."""
    return ("scim-id", scim_id, *change_key(action, "", None, group_key, new))


__all__ = [
    "HELD_TRIGGER", "HeldPlan", "NO_LONGER_CONFIRMED", "already_held", "carry_over", "hold", "last_seq",
    "lock_held", "open_held_plan", "withdraw",
]
