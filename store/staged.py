"""Staged plans (DESIGN.md S2, section 11): a halted run's plan, kept until someone decides.

A run that a safety limit halted stores its plan with `stage_plan`: which limit, the
operations (serialised exactly, so an approval can compare them with a fresh plan), and
the deactivations (emails) and membership removals (group, email) a person reads before
deciding. A directory has at most one open plan: staging a newer one supersedes the
older, and so does a full cycle that passes the limits (`supersede_open`). `decide`
closes one as approved or rejected and records who and when; nothing here applies
anything (approvals apply through `reconcile.apply`). Functions work in the caller's
session and do not commit.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.model import Action, Operation, Plan, Ref
from store.models import StagedPlan, StagedStatus
from store.runs import record_staged

EMPTY_READ = "empty-read"
_LIMIT = re.compile(r"\bmax_[a-z_]+")


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
        elif isinstance(value, tuple):  # (field, value) pairs: values, old, expected binding
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
