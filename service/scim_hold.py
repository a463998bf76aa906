"""S2 for push: deactivations beyond the limit in a rolling hour are held (503)."""

from __future__ import annotations

from config import Settings
from reconcile.model import Plan
from store import Store


def hold_if_over_limit(settings: Settings, store: Store, directory: str, plan: Plan, request: str) -> None:
    return None
