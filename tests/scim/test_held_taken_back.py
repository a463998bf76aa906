"""An `active: true` that races an approval of held deactivations: whichever commits
first, the IdP's word that the user is active holds once both are done (the approval
makes active again a user it deactivated after reading the deactivation as held; the
request makes active again a user an approval deactivated after the request wrote); on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import reconcile.staging
import service.scim_hold
from reconcile.held_approval import TAKEN_BACK_MEANWHILE
from service.staging import approve
from store import list_events
from tests.scim.conftest import Push


def _held_u2_u3(push: Push) -> int:
    push.deactivate(0), push.deactivate(1)  # applied: the hour's limit of 2 is reached
    assert (push.deactivate(2).status_code, push.deactivate(3).status_code) == (503, 503)
    return int(push.plan().run_id)


def _events(push: Push, run_id: int) -> list[tuple[str, str, str, str | None]]:
    with push.store.session() as session:
        return [(e.action, e.target, e.outcome, e.reason) for e in list_events(session, run_id)]


def test_active_true_after_the_approval_read_the_plan_leaves_the_user_active(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    real_apply = reconcile.staging.apply
    calls: list[int] = []

    def taken_back_first(*args: Any, **kwargs: Any) -> Any:
        if not calls:  # the approval's apply of what it read (a second one makes users active again)
            assert push.reactivate(3).status_code == 200  # u3 is still active: the request writes nothing
        calls.append(1)
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", taken_back_first)

    decision = approve(push.settings, run, by="alice", store=push.store)

    assert decision.status == "approved" and decision.applied is not None
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True
    assert push.okta.get(f"/Users/{push.users[3]['id']}").json()["active"] is True
    assert decision.note is not None and "1 users the IdP said are active while this ran are active again" \
        in decision.note
    u3 = [e for e in _events(push, decision.run_id or 0) if e[1] == "u3@example.com"]
    assert u3 == [("deactivate-user", "u3@example.com", "applied", None),
                  ("activate-user", "u3@example.com", "applied", TAKEN_BACK_MEANWHILE)]


def test_active_true_after_the_approval_applied_is_made_good_by_the_request_itself(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    real_apply = reconcile.staging.apply

    calls: list[int] = []

    def taken_back_after(*args: Any, **kwargs: Any) -> Any:
        result = real_apply(*args, **kwargs)
        if not calls:
            assert push.reactivate(3).status_code == 200  # u3 is inactive now: the request activates it
        calls.append(1)
        return result

    monkeypatch.setattr(reconcile.staging, "apply", taken_back_after)

    decision = approve(push.settings, run, by="alice", store=push.store)

    assert decision.status == "approved"
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True
    assert decision.note is None or "active again" not in decision.note  # nothing left for the approval
    assert [e[0] for e in _events(push, decision.run_id or 0) if e[1] == "u3@example.com"] == ["deactivate-user"]


def test_an_approval_that_closes_between_the_requests_write_and_its_withdrawal_is_undone_by_the_request(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    real_withdraw = service.scim_hold.withdraw_if_held
    decisions: list[Any] = []

    def approved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not decisions:  # the request wrote nothing (u3 was active); the approval runs whole now
            decisions.append(approve(push.settings, run, by="alice", store=push.store))
        return real_withdraw(*args, **kwargs)

    monkeypatch.setattr(service.scim_hold, "withdraw_if_held", approved_meanwhile)

    response = push.reactivate(3)

    assert response.status_code == 200 and response.json()["active"] is True
    assert decisions[0].status == "approved"
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True


def test_a_held_delete_applied_before_its_take_back_is_not_undone_by_the_approval(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    push.deactivate(0), push.deactivate(1)
    u3 = push.users[3]["id"]
    assert push.okta.delete(f"/Users/{u3}").status_code == 503
    run = int(push.plan().run_id)
    real_apply = reconcile.staging.apply
    calls: list[int] = []

    def taken_back_first(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            assert push.reactivate(3).status_code == 200
        calls.append(1)
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", taken_back_first)

    decision = approve(push.settings, run, by="alice", store=push.store)

    # The approval read the DELETE whole: the user is unbound, and the IdP, finding it gone
    # (404), creates it again; nothing makes active a row no directory addresses any more.
    assert decision.status == "approved"
    assert push.okta.get(f"/Users/{u3}").status_code == 404
    assert push.active()["u3@example.com"] is False
    assert "activate-user" not in [e[0] for e in _events(push, decision.run_id or 0)]
