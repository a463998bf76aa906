"""Staged plans (S2) for every face: list them, approve or reject one."""

from __future__ import annotations

from collections.abc import Sequence

from config import Settings
from reconcile.staging import Decision, NotStaged, approve, reject
from store import Store
from store.staged import PlanView, plan_views

__all__ = ["Decision", "NotStaged", "PlanView", "approve", "open_staged", "reject"]


def open_staged(store: Store, directory: str | None = None) -> Sequence[PlanView]:
    """The open staged plans (of `directory`), oldest first: a halted cycle's plan, or a
    push directory's held SCIM requests (`service.scim_hold`), listed alike."""
    with store.session() as session:
        return plan_views(session, directory)
