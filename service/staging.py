"""Staged plans (S2) for every face: list them, approve or reject one.

An approval is a run of its own (trigger `approval`, its actor the approver); a rejection
applies nothing, and is recorded as an admin run when the face passes an `Audit`.
"""

from __future__ import annotations

from collections.abc import Sequence

from config import Settings
from reconcile.cycle import Lock
from reconcile.staging import Decision, NotStaged, approve
from reconcile.staging import reject as _reject
from service.audit import Audit, record
from store import Store, open_plans
from store.models import StagedPlan

__all__ = ["Decision", "NotStaged", "approve", "open_staged", "reject"]


def reject(settings: Settings, run_id: int, *, by: str | None = None, store: Store | None = None,
           lock: Lock | None = None, audit: Audit | None = None) -> Decision:
    """Close the staged plan of run `run_id` without applying anything (see
    `reconcile.staging.reject`); recorded for `audit`."""
    decision = _reject(settings, run_id, by=by or (audit.actor if audit else None), store=store, lock=lock)
    if decision.status == "rejected" and store is not None:
        record(store, audit, decision.directory, "reject-plan",
               f"staged plan of run {run_id} rejected; nothing applied", target=f"run {run_id}")
    return decision


def open_staged(store: Store, directory: str | None = None) -> Sequence[StagedPlan]:
    """The open staged plans (of `directory`), oldest first."""
    with store.session() as session:
        return open_plans(session, directory)
