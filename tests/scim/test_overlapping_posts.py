"""Okta retries a POST that timed out while the first one still runs: the two overlap.
The request that loses the race is answered as a retry is (409), never 404, and the
store keeps one row with the first request's fields."""

from __future__ import annotations

from typing import Any

import pytest

from config import Settings
from reconcile.push import Problem, PushGroup, PushUser
from service import scim
from store import Store, export_state

pytestmark = pytest.mark.usefixtures("okta")  # issues the directory's token: enabled


def _plan_reads_before(monkeypatch: pytest.MonkeyPatch, lookup: str, first: Any) -> None:
    """The request's plan reads the store before the first request commits: its lookup
    finds nothing once; the write and everything after see the stored row."""
    real = getattr(scim, lookup)
    calls = {"n": 0}

    def stale(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args, **kwargs)

    first()
    monkeypatch.setattr(scim, lookup, stale)


def test_an_overlapping_retried_user_post_is_409_not_404(settings: Settings, store: Store,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    user = PushUser("ann@example.com", given_name="Ann", external_id="00u1")
    _plan_reads_before(monkeypatch, "user_by_email",
                       lambda: scim.create_user(settings, store, "okta", user, request="POST /Users"))

    with pytest.raises(Problem) as refused:
        scim.create_user(settings, store, "okta", PushUser("ann@example.com", external_id="00u1"),
                         request="POST /Users")

    assert (refused.value.status, refused.value.scim_type) == (409, "uniqueness")
    with store.session() as session:
        rows = [u for u in export_state(session)["users"] if u["email"] == "ann@example.com"]
    assert len(rows) == 1 and rows[0]["given_name"] == "Ann"


def test_an_overlapping_retried_group_post_is_409_not_404(settings: Settings, store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    group = PushGroup("Sales", external_id="00g1")
    _plan_reads_before(monkeypatch, "group_by_name",
                       lambda: scim.create_group(settings, store, "okta", group, request="POST /Groups"))

    with pytest.raises(Problem) as refused:
        scim.create_group(settings, store, "okta", group, request="POST /Groups")

    assert (refused.value.status, refused.value.scim_type) == (409, "uniqueness")
    with store.session() as session:
        assert [g["name"] for g in export_state(session)["groups"]].count("Sales") == 1
