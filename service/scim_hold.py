"""S2 for push (DESIGN §10): deactivations beyond the limit in a rolling hour are held.

An IdP pushes deactivations one request at a time, so the limit counts, for a request
that deactivates someone, the directory's deactivations applied by `scim` runs in the
last hour, plus those its open staged plan holds, plus the request's own. A request that
would go over `[safety] max_deactivations` (or over `max_deactivation_ratio` of the
directory's active users, for more than `ratio_floor`), or whose deactivation is held
already, is not applied: its operations join the directory's open staged plan
(`store.held`: one open plan per directory, each held request's operations appended to
it) and it is answered 503 with `Retry-After`. The plan is listed by `dirsync staged`,
released by `dirsync approve RUN_ID` or closed by `dirsync reject RUN_ID`, like any
staged plan (`reconcile.staging`).

Why one plan per directory that grows, rather than one per request: a mass unassignment
in the IdP arrives as thousands of requests, and an admin decides on the event, not on
each request; `status`, the metrics and the console count one open plan per directory;
and an operation the IdP retries is found in the plan and not held twice. Nothing is
lost: approving applies every operation held when the approval starts that still holds
against the store, and what is held while it runs moves to a new open plan.

While the plan is open its held deactivations count against the limit, so the IdP's
retries do not apply them one window later without a decision: only an approval does.
Approved deactivations (runs with trigger `approval`) do not count against the hour. The
IdP taking a deactivation back (`active: true` for that user) withdraws it from the plan
(`withdraw_if_held`); while a decision on the plan runs, such a request is refused (503)
before it writes, to be sent again (`refuse_while_decided`). Two requests that pass the
check at the same instant may overshoot the limit by one request's deactivations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from reconcile import clock
from reconcile.cycle_lock import cycle_lease
from reconcile.model import Action, Plan
from reconcile.push import Problem
from store import Store, count_users, has_open_plan, is_live
from store.held import HELD_TRIGGER, already_held, hold, lock_held, open_held_plan, withdraw
from store.models import SyncEvent, SyncRun

WINDOW = timedelta(hours=1)
# The Retry-After of an `active: true` refused while a decision on the plan that holds
# its user's deactivation runs: approving 5,000 held deactivations takes seconds.
DECISION_RETRY_SECONDS = 10


def hold_if_over_limit(settings: Settings, store: Store, directory: str, plan: Plan, request: str) -> None:
    """Raise `Problem(503)` after holding `plan` in the directory's open staged plan when
    its deactivations would exceed the limit, or one of them is held already."""
    deactivations = [n for n, op in enumerate(plan.operations) if op.action is Action.DEACTIVATE_USER]
    if not deactivations:
        return
    limits = settings.safety
    now = clock.now()
    with store.session() as session:
        recent = _recent_deactivations(session, directory, now)
        _, active = count_users(session, directory)
        held = open_held_plan(session, directory)
        repeated = already_held(session, held.run_id, plan.operations, request) & set(deactivations) if held else set()
    planned = len(deactivations) - len(repeated)
    held_count = held.deactivations if held is not None else 0
    total = len(recent) + held_count + planned
    if repeated:
        reason = (f"the deactivation of {plan.operations[min(repeated)].target} is held already, awaiting"
                  " approve or reject")
        allowed = 0
    elif total > limits.max_deactivations:
        reason = f"{total} deactivations in an hour exceed max_deactivations = {limits.max_deactivations}"
        allowed = limits.max_deactivations
    elif active > limits.to_limits().ratio_floor and total > limits.max_deactivation_ratio * active:
        allowed = int(limits.max_deactivation_ratio * active)
        reason = (f"{total} deactivations in an hour are {total / active:.0%} of {active} active users, over"
                  f" max_deactivation_ratio = {limits.max_deactivation_ratio:g}")
    else:
        return
    with store.session(write=True) as session:
        lock_held(session, directory)
        run_id, _ = hold(session, directory=directory, plan=plan, reason=reason, request=request, at=now)
    raise Problem(503, f"S2: {reason}; the request is held in the staged plan of run {run_id} until an admin"
                       f" approves it (dirsync staged {directory}; dirsync approve {run_id})", None, "held",
                  retry_after=_retry_after(sorted(recent), total - allowed, held_count + planned > allowed, now))


def refuse_while_decided(store: Store, directory: str, scim_id: str | None, emails: Callable[[], Iterable[str]],
                         request: str) -> int | None:
    """Before a request that says `active: true` writes: while a decision on the open
    plan runs (it holds the directory's cycle lease), it may be applying what it read as
    held, which a withdrawal cannot stop. A request that would take back a held
    deactivation (of user `scim_id`, or, for a POST, of one of `emails`, read only when
    a plan is open) is then answered 503 with a short `Retry-After`, nothing written, to
    be sent again and planned against what the decision left. Returns the run id of the
    plan that holds such a deactivation (None: none, and nothing the request need take
    back after it writes: what is held later came from a later request)."""
    with store.session() as session:
        if not has_open_plan(session, directory):
            return None  # the common case: one indexed read
    found = tuple(emails())  # read before the lock: no second connection while it is held
    with store.session(write=True) as session:
        lock_held(session, directory)
        run_id = withdraw(session, directory, scim_id or "", found, request)  # a trial: rolled back
        deciding = run_id is not None and is_live(session, cycle_lease(directory))
        session.rollback()
    if deciding:
        raise being_decided(run_id)
    return run_id


def withdraw_if_held(store: Store, directory: str, scim_id: str, emails: Iterable[str], request: str, *,
                     refused_while_decided: bool = True) -> int | None:
    """The IdP says user `scim_id` is active (`request` sent `active: true`; `emails`: the
    ones it had before the request and has now): a deactivation of it that the
    directory's open plan holds is withdrawn (`store.held.withdraw`). Returns that plan's
    run id.

    A decision that began after `refuse_while_decided` let the request write is met here:
    nothing is withdrawn and the request is answered 503 (an approval reads the plan
    under the same lock, so a withdrawal it did not read is refused). Not for a `POST
    /Users` (`refused_while_decided=False`): its link, written by now, binds the user
    under its new SCIM id, which a retry could not learn (409)."""
    with store.session() as session:
        if not has_open_plan(session, directory):
            return None  # the common case: one indexed read
    with store.session(write=True) as session:
        lock_held(session, directory)
        run_id = withdraw(session, directory, scim_id, emails, request)
        if run_id is None or not refused_while_decided or not is_live(session, cycle_lease(directory)):
            return run_id
        session.rollback()
    raise being_decided(run_id)


def being_decided(run_id: int | None) -> Problem:
    """The 503 of an `active: true` that a decision on plan `run_id` may undo, or (None)
    that found its user deactivated since it wrote: sent again, it is planned anew."""
    why = (f"the staged plan of run {run_id}, which holds this user's deactivation, is being decided" if run_id
           else "the user was deactivated after this request wrote (a held deactivation was approved)")
    return Problem(503, f"{why}; send the request again", None, "held", retry_after=DECISION_RETRY_SECONDS)


def _retry_after(recent: list[datetime], must_expire: int, waiting_cannot_help: bool, now: datetime) -> int:
    """Seconds until the window has room again: when enough of its applied deactivations
    are older than an hour. When held ones alone fill it, only a decision helps: an hour."""
    if waiting_cannot_help or must_expire > len(recent) or must_expire < 1:
        return int(WINDOW.total_seconds())
    oldest = recent[must_expire - 1]
    return max(1, int((oldest + WINDOW - now).total_seconds()) + 1)


def _recent_deactivations(session: Session, directory: str, now: datetime) -> list[datetime]:
    """When the directory's deactivations of the last hour were applied by SCIM requests."""
    query = (select(SyncEvent.at).join(SyncRun, SyncRun.id == SyncEvent.run_id)
             .where(SyncRun.directory == directory, SyncRun.trigger == HELD_TRIGGER,
                    SyncRun.started_at >= now - WINDOW - timedelta(hours=1),
                    SyncEvent.action == Action.DEACTIVATE_USER.value, SyncEvent.outcome == "applied",
                    SyncEvent.at > now - WINDOW))
    return list(session.scalars(query))


__all__ = ["being_decided", "hold_if_over_limit", "refuse_while_decided", "withdraw_if_held"]
