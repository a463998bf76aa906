"""Staged plans (S2) for every face: list them, approve or reject one."""

from __future__ import annotations

from collections.abc import Sequence

from config import Settings
from reconcile.staging import Decision, NotStaged, approve, reject
from store import Store, open_plans
from store.models import StagedPlan

__all__ = ["Decision", "NotStaged", "approve", "open_staged", "reject"]


def open_staged(store: Store, directory: str | None = None) -> Sequence[StagedPlan]:
    """The open staged plans (of `directory`), oldest first."""
    with store.session() as session:
        return open_plans(session, directory)
