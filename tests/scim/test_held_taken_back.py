"""An `active: true` that races a decision on held deactivations: while an approval holds
the directory, what it read as held may be applied, so a request that would take one
back is refused (503) before it writes, and the IdP's retry, planned against what the
approval left, is what holds; so is one that finds its user deactivated after it wrote;
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import reconcile.staging
import service.scim_hold
from service import scim
from service.staging import approve
from store import acquire, list_events, release
from tests.scim.conftest import Push
from tests.scim.test_held_identity import found, local_user, post_user


def _held_u2_u3(push: Push) -> int:
    push.deactivate(0), push.deactivate(1)  # applied: the hour's limit of 2 is reached
    assert (push.deactivate(2).status_code, push.deactivate(3).status_code) == (503, 503)
    return int(push.plan().run_id)


def _during_the_approval(monkeypatch: pytest.MonkeyPatch, request: Any) -> list[Any]:
    """Send `request` once the approval has read the plan, before it applies; the answers."""
    real_apply = reconcile.staging.apply
    answers: list[Any] = []

    def apply_after_the_request(*args: Any, **kwargs: Any) -> Any:
        answers.append(request())
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_the_request)
    return answers


def test_active_true_while_an_approval_applies_is_refused_and_its_retry_holds(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    answers = _during_the_approval(monkeypatch, lambda: push.reactivate(3))

    decision = approve(push.settings, run, by="alice", store=push.store)

    [refused] = answers
    assert refused.status_code == 503 and refused.headers["retry-after"] == "10"
    assert f"run {run}" in refused.json()["detail"] and "being decided" in refused.json()["detail"]
    assert decision.status == "approved" and decision.applied is not None and decision.applied.applied == 2
    assert push.active()["u3@example.com"] is False  # the approval applied what it read
    retried = push.reactivate(3)  # the IdP sends it again
    assert retried.status_code == 200 and retried.json()["active"] is True
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True


def test_the_whole_refused_request_is_what_its_retry_applies(push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    push.deactivate(0), push.deactivate(1)
    u3 = push.users[3]["id"]
    rename_and = [{"op": "replace", "path": "userName", "value": "z@example.com"},
                  {"op": "replace", "path": "active", "value": False}]
    assert push.okta.patch(f"/Users/{u3}", rename_and).status_code == 503  # held whole
    run = int(push.plan().run_id)
    back = [{"op": "replace", "path": "userName", "value": "u3@example.com"},
            {"op": "replace", "path": "active", "value": True}]
    answers = _during_the_approval(monkeypatch, lambda: push.okta.patch(f"/Users/{u3}", back))

    assert approve(push.settings, run, by="alice", store=push.store).status == "approved"

    assert [a.status_code for a in answers] == [503]
    assert push.active()["z@example.com"] is False  # the held request, applied whole
    retried = push.okta.patch(f"/Users/{u3}", back)
    assert retried.status_code == 200
    assert (retried.json()["userName"], retried.json()["active"]) == ("u3@example.com", True)


def test_active_true_for_a_user_with_nothing_held_is_served_during_a_decision(push: Push) -> None:
    _held_u2_u3(push)
    assert acquire(push.store, "cycle:okta", "an approval", 60)  # a decision on the plan runs

    response = push.reactivate(4)

    assert response.status_code == 200
    assert release(push.store, "cycle:okta", "an approval")


def test_active_true_beside_a_decision_withdraws_nothing_until_it_ends(push: Push) -> None:
    run = _held_u2_u3(push)
    assert acquire(push.store, "cycle:okta", "an approval", 60)

    refused = push.reactivate(3)

    assert refused.status_code == 503 and f"run {run}" in refused.json()["detail"]
    assert push.plan().deactivations == ("u2@example.com", "u3@example.com")  # nothing withdrawn
    assert release(push.store, "cycle:okta", "an approval")
    assert push.reactivate(3).status_code == 200  # the IdP's retry
    assert push.plan().deactivations == ("u2@example.com",)


def test_a_post_during_the_approval_is_refused_before_it_writes_and_the_idp_finds_the_user_after(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    local_user(push, "ann@example.com")
    push.deactivate(0), push.deactivate(1)
    assert post_user(push, "ann@example.com", active=False).status_code == 503  # links and deactivates: held
    run = int(push.plan().run_id)
    answers = _during_the_approval(monkeypatch, lambda: post_user(push, "ann@example.com", active=True))

    decision = approve(push.settings, run, by="alice", store=push.store)

    assert [a.status_code for a in answers] == [503]  # nothing written: no SCIM id the IdP cannot learn
    assert decision.status == "approved" and decision.error is None
    [ann] = found(push, "ann@example.com")
    assert ann["active"] is False  # the held POST, applied whole
    assert post_user(push, "ann@example.com", active=True).status_code == 409  # the retry: it exists
    # ... so the IdP finds the user and says what it wants of them.
    patched = push.okta.patch(f"/Users/{ann['id']}", [{"op": "replace", "path": "active", "value": True}])
    assert patched.status_code == 200 and patched.json()["active"] is True


def test_active_true_that_finds_its_user_deactivated_after_it_wrote_is_refused(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    real_withdraw = service.scim_hold.withdraw_if_held
    decisions: list[Any] = []

    def approved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not decisions:  # the request wrote (nothing: u3 was active); a whole approval runs now
            decisions.append(approve(push.settings, run, by="alice", store=push.store))
        return real_withdraw(*args, **kwargs)

    monkeypatch.setattr(service.scim_hold, "withdraw_if_held", approved_meanwhile)

    refused = push.reactivate(3)

    assert decisions[0].status == "approved"
    assert refused.status_code == 503 and "deactivated after this request wrote" in refused.json()["detail"]
    assert push.reactivate(3).json()["active"] is True  # sent again: planned against what the approval left


def test_a_decision_that_began_after_the_request_was_let_write_still_refuses_its_withdrawal(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _held_u2_u3(push)
    real_check = service.scim_hold.refuse_while_decided

    def then_a_decision_begins(*args: Any, **kwargs: Any) -> Any:
        held = real_check(*args, **kwargs)  # no decision runs: let through
        assert acquire(push.store, "cycle:okta", "an approval", 60)
        return held

    monkeypatch.setattr(service.scim_hold, "refuse_while_decided", then_a_decision_begins)

    refused = push.reactivate(3)

    assert refused.status_code == 503 and f"run {run}" in refused.json()["detail"]
    assert push.plan().deactivations == ("u2@example.com", "u3@example.com")  # nothing withdrawn
    assert release(push.store, "cycle:okta", "an approval")


def test_a_later_deactivation_by_the_idp_is_not_taken_for_an_approval(
        push: Push, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = scim._write
    later: list[Any] = []

    def idp_deactivates_meanwhile(*args: Any, **kwargs: Any) -> Any:
        real_write(*args, **kwargs)
        if not later and args[-1].startswith("PATCH"):  # after the first request wrote:
            later.append(None)
            later[0] = push.deactivate(4)  # the IdP's next request for the user, active: false

    monkeypatch.setattr(scim, "_write", idp_deactivates_meanwhile)
    first = push.reactivate(4)  # no plan is open, nothing is held

    assert later[0].status_code == 200  # applied: under the limit
    assert first.status_code == 200
    assert push.active()["u4@example.com"] is False  # the IdP's later word


def test_many_active_true_at_once_while_a_plan_is_open_all_answer(push: Push) -> None:
    push.deactivate(0), push.deactivate(1)
    assert push.deactivate(2).status_code == 503  # a plan is open
    pool = push.store.engine.pool
    pool._timeout = 3  # type: ignore[attr-defined]  # 30 s by default: the same, slower
    size = pool.size() + pool._max_overflow + 1  # type: ignore[attr-defined]
    ops = scim.parse_patch({"Operations": [{"op": "replace", "path": "active", "value": True}]})
    start = threading.Barrier(size)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:  # the request's reads must not need a second connection while it holds the plan's lock
            scim.patch_user(push.settings, push.store, "okta", push.users[4]["id"], ops, request="PATCH /Users/x")
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=one) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["ok"] * size
