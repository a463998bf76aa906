"""An `active: true` that races a decision on held deactivations: its withdrawal waits
while an approval holds the directory (the approval may be applying the deactivation it
read as held), then the request makes active again a user the approval deactivated; the
IdP's own later deactivation is never undone; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import freezegun
import pytest

import reconcile.staging
import service.scim_hold
from reconcile import clock
from service import scim
from service.staging import approve
from store import acquire, list_events, release
from tests.scim.conftest import Push


def _held_u2_u3(push: Push) -> int:
    push.deactivate(0), push.deactivate(1)  # applied: the hour's limit of 2 is reached
    assert (push.deactivate(2).status_code, push.deactivate(3).status_code) == (503, 503)
    return int(push.plan().run_id)


def _events(push: Push, run_id: int | None) -> list[tuple[str, str, str, str | None]]:
    with push.store.session() as session:
        return [(e.action, e.target, e.outcome, e.detail) for e in list_events(session, run_id)]


def _take_back(push: Push, n: int, answers: list[Any]) -> None:
    """The IdP's `active: true` for u`n`, as the endpoint serves it (from another thread)."""
    ops = scim.parse_patch({"Operations": [{"op": "replace", "path": "active", "value": True}]})
    try:
        view = scim.patch_user(push.settings, push.store, push.directory, push.users[n]["id"], ops,
                               request=f"PATCH /Users/{push.users[n]['id']}")
        answers.append((200, view.row.active))
    except scim.Problem as problem:
        answers.append((problem.status, problem.retry_after))


def _taken_back_while_applying(push: Push, monkeypatch: pytest.MonkeyPatch, n: int) -> list[Any]:
    """Make the approval's apply start only once u`n`'s `active: true` waits for it; the
    answers it got, filled in when its thread ends (`_joined`)."""
    real_apply, real_is_live = reconcile.staging.apply, service.scim_hold.is_live
    waiting = threading.Event()
    answers: list[Any] = []

    def is_live(*args: Any, **kwargs: Any) -> bool:
        live = real_is_live(*args, **kwargs)
        if live:
            waiting.set()
        return live

    def apply_once_it_waits(*args: Any, **kwargs: Any) -> Any:
        thread = threading.Thread(target=_take_back, args=(push, n, answers))
        thread.start()
        answers.append(thread)
        assert waiting.wait(timeout=20), "the withdrawal did not wait for the approval"
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(service.scim_hold, "is_live", is_live)
    monkeypatch.setattr(reconcile.staging, "apply", apply_once_it_waits)
    return answers


def _joined(answers: list[Any]) -> list[Any]:
    for thread in [a for a in answers if isinstance(a, threading.Thread)]:
        thread.join(timeout=30)
    return [a for a in answers if not isinstance(a, threading.Thread)]


def test_active_true_while_an_approval_applies_waits_for_it_and_the_user_ends_active(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    answers = _taken_back_while_applying(push, monkeypatch, 3)

    decision = approve(push.settings, run, by="alice", store=push.store)

    assert decision.status == "approved" and decision.applied is not None and decision.applied.applied == 2
    assert _joined(answers) == [(200, True)]
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True
    assert ("deactivate-user", "u3@example.com", "applied", f"approval of run {run}") in _events(push, decision.run_id)
    u3 = f"PATCH /Users/{push.users[3]['id']}"
    assert [e[:3] for e in _events(push, 1) if e[1] == "u3@example.com" and e[3] == u3][-1] == (
        "activate-user", "u3@example.com", "applied")
    with freezegun.freeze_time(clock.now() + timedelta(hours=2)):  # the hour has room again
        assert push.deactivate(3).status_code == 200  # and the IdP's next word holds
    assert push.active()["u3@example.com"] is False


def test_an_approval_that_ends_between_the_requests_write_and_its_withdrawal_is_undone_by_the_request(
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


def test_a_deactivation_the_idp_sent_later_is_not_undone_by_an_earlier_active_true(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    real_withdraw = service.scim_hold.withdraw_if_held

    def deactivated_meanwhile(*args: Any, **kwargs: Any) -> Any:
        assert push.deactivate(3).status_code == 200  # within the limit: applied at once
        return real_withdraw(*args, **kwargs)

    monkeypatch.setattr(service.scim_hold, "withdraw_if_held", deactivated_meanwhile)

    response = push.reactivate(3)

    assert response.status_code == 200 and response.json()["active"] is False
    assert push.active()["u3@example.com"] is False


def test_active_true_is_answered_503_when_the_decision_outlasts_its_wait(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    monkeypatch.setattr(service.scim_hold, "DECISION_WAIT_SECONDS", 0.3)
    assert acquire(push.store, "cycle:okta", "an approval", 60)  # a decision on the plan runs

    waited = push.reactivate(3)

    assert waited.status_code == 503 and waited.headers["retry-after"] == "30"
    assert f"run {run}" in waited.json()["detail"] and "being decided" in waited.json()["detail"]
    assert push.plan().deactivations == ("u2@example.com", "u3@example.com")  # nothing withdrawn yet
    assert release(push.store, "cycle:okta", "an approval")
    assert push.reactivate(3).status_code == 200  # the IdP's retry
    assert push.plan().deactivations == ("u2@example.com",)


def test_active_true_for_a_user_a_waited_for_approval_deleted_finds_it_gone(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    push.deactivate(0), push.deactivate(1)
    u3 = push.users[3]["id"]
    assert push.okta.delete(f"/Users/{u3}").status_code == 503
    run = int(push.plan().run_id)
    answers = _taken_back_while_applying(push, monkeypatch, 3)

    decision = approve(push.settings, run, by="alice", store=push.store)

    # The approval read the DELETE whole: the user is unbound, and the IdP, finding it gone
    # (404), creates it again; nothing makes active a row no directory addresses any more.
    assert decision.status == "approved"
    assert [status for status, _ in _joined(answers)] == [404]
    assert push.okta.get(f"/Users/{u3}").status_code == 404
    assert push.active()["u3@example.com"] is False
