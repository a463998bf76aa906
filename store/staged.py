"""Staged plans (DESIGN.md S2, section 11): a halted run's plan, kept until someone decides.

A run that a safety limit halted stores its plan with `stage_plan`: which limit, the
operations (serialised exactly, so an approval can compare them with a fresh plan), and
the deactivations (emails) and membership removals (group, email) a person reads before
deciding. A directory has at most one open plan: staging a newer one supersedes the
older, and so does a full cycle that passes the limits (`supersede_open`). `decide`
closes one as approved or rejected and records who and when; nothing here applies
anything (approvals apply through `reconcile.apply`). Functions work in the caller's
session and do not commit.

What a person reads before deciding (`plan_views`) comes from the plan's run's `staged`
events, one per operation: a pull cycle records its whole plan there when it halts, and a
push directory adds each held request's operations there (`store.held`), so both kinds
list alike. The serialised `operations` of the row are what a pull approval compares with
a fresh plan; a push plan's row keeps none (its approval reads the events).
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.model import Action, Fields, Operation, Plan, Ref
from reconcile.push_label import addressed_user, labels_addressing
from reconcile.rules import name_key
from store.events import record_staged
from store.models import Outcome, StagedPlan, StagedStatus, SyncEvent
from store.push import resolve_users

EMPTY_READ = "empty-read"
# The reason of a staged operation that no longer holds: the directory's fresh plan no
# longer contains it, or the IdP took a held deactivation back.
NO_LONGER_CONFIRMED = "no-longer-confirmed"
_LIMIT = re.compile(r"\bmax_[a-z_]+")
_WITHDRAWN = re.compile(r"withdrawn \(event (\d+)\): ")


def stage_plan(
    session: Session,
    *,
    run_id: int,
    directory: str,
    plan: Plan,
    reason: str,
    limit: str | None = None,
    at: datetime | None = None,
) -> StagedPlan:
    """Keep `plan` of halted run `run_id` open for a decision: its `staged` events (see
    `record_staged`) and its staged-plan row. Any older open plan of `directory` is
    superseded by this one."""
    record_staged(session, run_id, plan)
    supersede_open(session, directory, by_run=run_id, at=at)
    return _add(session, run_id, directory, plan, reason, limit, StagedStatus.OPEN, at=at)


def record_approved(
    session: Session,
    *,
    run_id: int,
    directory: str,
    plan: Plan,
    reason: str,
    by: str | None = None,
    limit: str | None = None,
    at: datetime | None = None,
) -> StagedPlan:
    """Record that run `run_id`'s own plan, over a limit, was approved as it ran
    (`sync --allow-deactivations`): a staged-plan row closed as approved by `by`. Any
    older open plan of `directory` is superseded by it."""
    supersede_open(session, directory, by_run=run_id, at=at)
    row = _add(session, run_id, directory, plan, reason, limit, StagedStatus.APPROVED, at=at)
    row.decided_at, row.decided_by, row.decided_run_id = row.created_at, by or operator_name(), run_id
    session.flush()
    return row


def supersede_open(session: Session, directory: str, *, by_run: int, at: datetime | None = None) -> int:
    """Close every open plan of `directory` as superseded by run `by_run` (a later full
    read decided instead). Call only under the directory's cycle lock. Returns how many."""
    done = session.execute(
        update(StagedPlan)
        .where(StagedPlan.directory == directory, StagedPlan.status == StagedStatus.OPEN.value,
               StagedPlan.run_id != by_run)
        .values(status=StagedStatus.SUPERSEDED.value, decided_at=at or clock.now(), decided_run_id=by_run)
    )
    return int(getattr(done, "rowcount", 0) or 0)


def decide(
    session: Session,
    run_id: int,
    status: StagedStatus,
    *,
    by: str | None = None,
    decided_run_id: int | None = None,
    at: datetime | None = None,
) -> bool:
    """Close the open plan of run `run_id` as `status` (approved or rejected), recording who
    (`by`, default the OS user) and when. False when it is not open (any more)."""
    done = session.execute(
        update(StagedPlan)
        .where(StagedPlan.run_id == run_id, StagedPlan.status == StagedStatus.OPEN.value)
        .values(status=status.value, decided_at=at or clock.now(), decided_by=by or operator_name(),
                decided_run_id=decided_run_id)
    )
    return bool(getattr(done, "rowcount", 0))


def get_staged(session: Session, run_id: int) -> StagedPlan | None:
    return session.get(StagedPlan, run_id)


def open_plans(session: Session, directory: str | None = None) -> list[StagedPlan]:
    """The open staged plans (of `directory`, or of all), oldest first."""
    query = select(StagedPlan).where(StagedPlan.status == StagedStatus.OPEN.value).order_by(StagedPlan.run_id)
    if directory is not None:
        query = query.where(StagedPlan.directory == directory)
    return list(session.scalars(query))


def has_open_plan(session: Session, directory: str) -> bool:
    """Whether `directory` waits for a decision (its cycles then read in full)."""
    query = select(StagedPlan.run_id).where(
        StagedPlan.directory == directory, StagedPlan.status == StagedStatus.OPEN.value
    ).limit(1)
    return session.scalar(query) is not None


@dataclass(frozen=True, slots=True)
class PlanView:
    """An open plan as a person reads it before deciding (see the module notes):
    `operations` counts what it holds; `deactivations` are emails, `removals` are
    {"group", "email"}, in the order they were staged."""

    run_id: int
    directory: str
    created_at: datetime
    safety_limit: str
    reason: str
    operations: int
    deactivations: tuple[str, ...]
    removals: tuple[dict[str, Any], ...]


def plan_views(session: Session, directory: str | None = None) -> list[PlanView]:
    """The open staged plans (of `directory`, or of all), oldest first, read from their
    runs' `staged` events (withdrawn ones left out). Each held change names its user as
    an approval finds them (`listed_email`)."""
    out = []
    for row in open_plans(session, directory):
        events = live_events(session.scalars(
            select(SyncEvent).where(SyncEvent.run_id == row.run_id).order_by(SyncEvent.seq)))
        emails = current_emails(session, row.directory, events)
        out.append(PlanView(
            row.run_id, row.directory, row.created_at, row.safety_limit, row.reason, len(events),
            tuple(listed_email(e, emails) or e.target for e in events if e.action == Action.DEACTIVATE_USER.value),
            tuple({"group": e.target, "email": listed_email(e, emails)}
                  for e in events if e.action == Action.REMOVE_MEMBER.value),
        ))
    return out


def current_emails(session: Session, directory: str, events: Iterable[SyncEvent]) -> dict[str, str]:
    """The email each user that `events`' requests addressed by SCIM id (`PATCH
    /Users/{id}`, ...) has now, by that id, for the users `directory` still binds: one
    read per few thousand distinct ids, however many events name them."""
    scim_ids = {scim_id for e in events if (scim_id := addressed_user(e.detail)) is not None}
    return {scim_id: email for scim_id, (_, email) in resolve_users(session, directory, scim_ids).items()}


def listed_email(event: SyncEvent, current: Mapping[str, str]) -> str | None:
    """The email a listing names the user of held `event` by: a request to `/Users/{id}`
    is about the user bound under that id (`store.held_read.addressed_row`), so their email now
    (`current`, see `current_emails`: the IdP may have renamed them since, and someone
    else may have the old email); else the email the event names (a `POST /Users`'s, or
    one no user is bound under its id any more)."""
    scim_id = addressed_user(event.detail)
    if scim_id is not None and scim_id in current:
        return current[scim_id]
    if event.action == Action.REMOVE_MEMBER.value:
        member = (event.old or {}).get("member")
        return None if member is None else str(member)
    return event.target


def staged_deactivations(session: Session, run_ids: Iterable[int]) -> dict[int, int]:
    """How many deactivations each of plans `run_ids` holds (withdrawn ones left out)."""
    ids = list(run_ids)
    if not ids:
        return {}
    deactivate = SyncEvent.action == Action.DEACTIVATE_USER.value
    staged = func.sum(case((SyncEvent.outcome == Outcome.STAGED.value, 1), else_=0))
    withdrawn = func.sum(case((SyncEvent.reason == NO_LONGER_CONFIRMED, 1), else_=0))
    query = (select(SyncEvent.run_id, staged, withdrawn).where(SyncEvent.run_id.in_(ids), deactivate)
             .group_by(SyncEvent.run_id))
    counts = {int(run_id): int(s or 0) - int(w or 0) for run_id, s, w in session.execute(query)}
    return {run_id: counts.get(run_id, 0) for run_id in ids}


def open_staged_events(session: Session, *, user_key: str | None = None, group_key: str | None = None,
                       scim_id: str | None = None, bound_to: str | None = None) -> list[SyncEvent]:
    """What open plans hold on one group (by name key), or on one user, oldest first. A
    user's are the events of requests about them: held under their email key (`user_key`)
    from a request that named no SCIM id (a pull cycle's, a `POST /Users`'s), and, when
    directory `bound_to` binds them under `scim_id`, its requests to `/Users/{scim_id}`,
    under whichever email they had then. A request to another SCIM id held under their
    email was about another user (whom the IdP renamed since)."""
    out: list[SyncEvent] = []
    for run_id, directory in session.execute(select(StagedPlan.run_id, StagedPlan.directory)
                                             .where(StagedPlan.status == StagedStatus.OPEN.value)
                                             .order_by(StagedPlan.run_id)):
        query = select(SyncEvent).where(SyncEvent.run_id == run_id).order_by(SyncEvent.seq)
        if user_key is None:
            out += live_events(session.scalars(query.where(SyncEvent.group_key == group_key)))
            continue
        own = scim_id if directory == bound_to else None
        keys = {user_key} | (keys_held_for(session, run_id, own) if own is not None else set())
        # A withdrawal carries its staged event's user key: both are read.
        events = live_events(session.scalars(query.where(SyncEvent.user_key.in_(keys))))
        out += [e for e in events if held_about(e, {user_key}, own)]
    return out


def keys_held_for(session: Session, run_id: int, scim_id: str) -> set[str]:
    """The user keys plan `run_id` holds requests to `/Users/{scim_id}` under (the emails
    the user had when each was held). No index names the label: this reads the plan's
    events, as `staged_deactivations` does."""
    return {key for key in session.scalars(select(SyncEvent.user_key).distinct().where(
        SyncEvent.run_id == run_id, SyncEvent.detail.in_(labels_addressing(scim_id)))) if key is not None}


def held_about(event: SyncEvent, user_keys: Collection[str], scim_id: str | None) -> bool:
    """Whether held `event` is about the user who has had the email keys `user_keys` and is
    bound under `scim_id` (None: under none in the event's directory): a request to
    `/Users/{scim_id}`, or one that named no SCIM id (a pull cycle's, a `POST /Users`'s)
    held under one of their keys."""
    addressed = addressed_user(event.detail)
    return addressed == scim_id if addressed is not None else event.user_key in user_keys


def live_events(events: Iterable[SyncEvent]) -> list[SyncEvent]:
    """The `staged` events of one run (given in `seq` order) that still hold: those no
    withdrawal in the run takes back (see `withdrawals`)."""
    ordered = list(events)
    taken = {id(staged) for _, staged in withdrawals(ordered)}
    return [e for e in ordered if e.outcome == Outcome.STAGED.value and id(e) not in taken]


def withdrawals(events: Iterable[SyncEvent]) -> list[tuple[SyncEvent, SyncEvent]]:
    """Of one run's events (in `seq` order): each withdrawal (an event of reason
    `no-longer-confirmed`) with the staged event it takes back: the one its detail names
    (`withdrawal_detail`; two held events can make the same change, each for the user
    its own request addressed), else, for a withdrawal that names none, the earliest one
    with the same change not taken back already. A withdrawal whose event is not among
    `events` takes back nothing of them."""
    waiting: dict[tuple[Any, ...], list[SyncEvent]] = {}
    pairs: list[tuple[SyncEvent, SyncEvent]] = []
    for event in events:
        if event.outcome == Outcome.STAGED.value:
            waiting.setdefault(event_change(event), []).append(event)
        elif event.outcome == Outcome.REJECTED.value and event.reason == NO_LONGER_CONFIRMED:
            staged = waiting.get(event_change(event), [])
            seq = withdrawn_seq(event)
            found = next((n for n, e in enumerate(staged) if seq is None or e.seq == seq), None)
            if found is not None:
                pairs.append((event, staged.pop(found)))
    return pairs


def withdrawal_detail(staged_seq: int, why: str) -> str:
    """The detail of a withdrawal of the staged event `staged_seq` of its run: it names
    that event, so `withdrawals` pairs them exactly."""
    return f"withdrawn (event {staged_seq}): {why}"


def withdrawn_seq(event: SyncEvent) -> int | None:
    """The seq of the staged event withdrawal `event` names (None for one that names none)."""
    found = _WITHDRAWN.match(event.detail or "")
    return int(found.group(1)) if found else None


def event_change(event: SyncEvent) -> tuple[Any, ...]:
    """What a staged event changes: the same change to the same rows is the same key."""
    return change_key(event.action, event.target, event.user_key, event.group_key, event.new)


def change_key(action: str, target: str, user_key: str | None, group_key: str | None,
               new: Mapping[str, Any] | None) -> tuple[Any, ...]:
    return action, name_key(target), user_key, group_key, json.dumps(dict(new or {}), sort_keys=True, default=str)


def staged_operations(row: StagedPlan) -> tuple[Operation, ...]:
    """The operations of a staged plan, exactly as they were planned."""
    return tuple(operation_from_json(item) for item in row.operations)


def limit_name(reason: str) -> str:
    """The setting a guard's reason names (`max_deactivations`, ...), for listings."""
    found = _LIMIT.search(reason)
    return found.group(0) if found else "safety-limit"


def operator_name() -> str:
    """Who runs this process (recorded with a decision when no one is named)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. a container's arbitrary uid
        return f"uid {os.getuid()}"


# --- serialising operations --------------------------------------------------------------


def operation_json(op: Operation) -> dict[str, Any]:
    """An operation as JSON, every field of it; `operation_from_json` gives back an equal
    one. Values are the planner's scalars (text, booleans, numbers, None)."""
    out: dict[str, Any] = {}
    for spec in fields(Operation):
        value = getattr(op, spec.name)
        if isinstance(value, Action):
            out[spec.name] = value.value
        elif isinstance(value, Ref):
            out[spec.name] = {"local_id": value.local_id, "key": value.key}
        elif isinstance(value, (tuple, Fields)):  # (field, value) pairs: values, old, expected binding
            out[spec.name] = [[name, item] for name, item in value]
        else:
            out[spec.name] = value
    return out


def operation_from_json(item: Mapping[str, Any]) -> Operation:
    known = {spec.name for spec in fields(Operation)}
    args: dict[str, Any] = {}
    for name, value in item.items():
        if name not in known:
            continue  # written by a newer dirsync: the fields this one knows still apply
        if name == "action":
            args[name] = Action(value)
        elif isinstance(value, dict):
            args[name] = Ref(local_id=value.get("local_id"), key=value.get("key"))
        elif isinstance(value, list):
            args[name] = tuple((str(pair[0]), pair[1]) for pair in value)
        else:
            args[name] = value
    return Operation(**args)


def _add(
    session: Session, run_id: int, directory: str, plan: Plan, reason: str, limit: str | None,
    status: StagedStatus, *, at: datetime | None,
) -> StagedPlan:
    row = StagedPlan(
        run_id=run_id,
        directory=directory,
        status=status.value,
        created_at=at or clock.now(),
        safety_limit=limit or limit_name(reason),
        reason=reason,
        operations=[operation_json(op) for op in plan.operations],
        deactivations=[op.target for op in plan.operations if op.action is Action.DEACTIVATE_USER],
        removals=[
            {"group": op.target, "email": dict(op.old).get("member")}
            for op in plan.operations
            if op.action is Action.REMOVE_MEMBER
        ],
    )
    session.add(row)
    session.flush()
    return row
