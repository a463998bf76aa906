"""S2 for push: deactivations over the rolling-hour limit are held in the directory's open
staged plan (503 + Retry-After), listed by `dirsync staged`, applied by `dirsync approve`
where they still hold, closed by `dirsync reject`; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import freezegun

import reconcile.staging
from reconcile import clock
from service.staging import approve, open_staged, reject
from store import Store, list_events
from tests.scim.conftest import Push

def test_a_burst_over_the_limit_is_held_with_503_and_retry_after(push: Push) -> None:
    assert [push.deactivate(n).status_code for n in (0, 1)] == [200, 200]

    held = push.deactivate(2)

    assert held.status_code == 503
    assert 0 < int(held.headers["retry-after"]) <= 3601
    assert held.json()["detail"].startswith("S2: 3 deactivations in an hour exceed max_deactivations = 2")
    assert push.active()["u2@example.com"] is True
    plan = push.plan()
    assert (plan.directory, plan.deactivations, plan.safety_limit) == ("okta", ("u2@example.com",),
                                                                       "max_deactivations")
    [event] = [e for e in _events(push.store, plan.run_id) if e.outcome == "staged"]
    assert event.detail == f"PATCH /Users/{push.users[2]['id']}"


def test_held_requests_accumulate_in_one_open_plan_and_a_retry_is_not_held_twice(push: Push) -> None:
    push.deactivate(0), push.deactivate(1)

    statuses = [push.deactivate(2).status_code, push.deactivate(3).status_code, push.deactivate(2).status_code]

    assert statuses == [503, 503, 503]
    assert push.plan().deactivations == ("u2@example.com", "u3@example.com")  # one plan: nothing lost


def test_delete_counts_as_a_deactivation_and_is_held_whole(push: Push) -> None:
    push.deactivate(0), push.deactivate(1)

    response = push.okta.delete(f"/Users/{push.users[3]['id']}")

    assert response.status_code == 503
    assert push.okta.get(f"/Users/{push.users[3]['id']}").status_code == 200
    assert push.plan().deactivations == ("u3@example.com",) and push.plan().operations == 2  # + the unbinding


def test_staged_lists_the_held_plan_and_status_counts_it(push: Push) -> None:
    push.deactivate(0), push.deactivate(1), push.deactivate(2), push.deactivate(3)
    run = push.plan().run_id

    listed = push.ws.run("staged", "okta")
    as_json = push.ws.run("staged", "okta", "--json").json()
    status = push.ws.run("status", "--json").json()

    assert listed.code == 0
    assert f"run {run}  okta" in listed.out and "limit max_deactivations" in listed.out
    assert "deactivate u2@example.com" in listed.out and "deactivate u3@example.com" in listed.out
    assert f"decide: dirsync approve {run}" in listed.out
    assert [(p["run_id"], p["deactivations"]) for p in as_json] == [(run, ["u2@example.com", "u3@example.com"])]
    [okta] = [d for d in status if d["name"] == "okta"]
    assert (okta["halted"], okta["staged_run_id"], okta["staged_deactivations"]) == (True, run, 2)


def test_approve_applies_what_still_holds_and_drops_a_user_reactivated_meanwhile(push: Push) -> None:
    push.deactivate(0), push.deactivate(1), push.deactivate(2), push.deactivate(3)
    run = push.plan().run_id
    assert push.reactivate(3).status_code == 200  # the IdP takes u3's deactivation back

    approved = push.ws.run("approve", str(run), "--by", "alice")

    assert approved.code == 0, approved.err
    assert f"okta: staged plan of run {run} approved by alice: 1 operations applied" in approved.out
    assert "not applied: deactivate-user u3@example.com" in approved.out
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True
    assert open_staged(push.store, "okta") == []
    assert push.deactivate(2).status_code == 200  # the IdP's retry finds it done
    approval = int(approved.out.split("applied in run ")[1].split()[0])
    dropped = [e for e in _events(push.store, approval) if e.outcome == "rejected"]
    assert [(e.target, e.reason) for e in dropped] == [("u3@example.com", "no-longer-confirmed")]
    assert "active" in (dropped[0].detail or "") and "PATCH" in (dropped[0].detail or "")


def test_a_plan_no_longer_open_cannot_be_approved_again(push: Push) -> None:
    push.deactivate(0), push.deactivate(1), push.deactivate(2)
    run = push.plan().run_id
    assert push.ws.run("approve", str(run)).code == 0

    again = push.ws.run("approve", str(run))

    assert again.code == 4 and "not an open staged plan: approved" in again.err


def test_reject_closes_the_plan_and_applies_nothing(push: Push) -> None:
    push.deactivate(0), push.deactivate(1), push.deactivate(2)
    run = push.plan().run_id

    rejected = push.ws.run("reject", str(run), "--by", "bob")

    assert rejected.code == 0
    assert f"okta: staged plan of run {run} rejected by bob; nothing applied" in rejected.out
    assert push.active()["u2@example.com"] is True
    assert push.ws.run("staged", "okta").out.strip() == "no staged plans for okta"
    assert push.ws.run("reject", str(run)).code == 4


def test_while_a_plan_is_open_held_deactivations_fill_the_window_and_are_never_applied_silently(
        push: Push) -> None:
    push.deactivate(0), push.deactivate(1), push.deactivate(2), push.deactivate(3)  # u2, u3 held

    with freezegun.freeze_time(clock.now() + timedelta(hours=2)):  # the applied ones left the window
        retried = push.deactivate(2)
        another = push.deactivate(4)

    assert (retried.status_code, another.status_code) == (503, 503)
    assert "held already" in retried.json()["detail"]
    assert int(retried.headers["retry-after"]) == 3600  # only a decision helps, not waiting
    assert push.active()["u2@example.com"] is True and push.active()["u4@example.com"] is True
    assert push.plan().deactivations == ("u2@example.com", "u3@example.com", "u4@example.com")


def test_requests_held_while_an_approval_runs_wait_in_a_new_plan(push: Push, monkeypatch) -> None:
    push.deactivate(0), push.deactivate(1), push.deactivate(2)
    run = push.plan().run_id
    real_apply = reconcile.staging.apply

    def apply_after_another_hold(*args: Any, **kwargs: Any) -> Any:
        assert push.deactivate(3).status_code == 503  # held during the approval
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_another_hold)

    decision = approve(push.settings, run, by="alice", store=push.store)

    assert decision.status == "approved" and decision.applied is not None and decision.applied.applied == 1
    assert push.active()["u2@example.com"] is False and push.active()["u3@example.com"] is True
    later = push.plan()
    assert later.run_id != run and later.deactivations == ("u3@example.com",)
    assert decision.note == f"requests held meanwhile wait in the staged plan of run {later.run_id}"
    assert reject(push.settings, later.run_id, store=push.store).status == "rejected"


def test_scim_held_commands_are_gone(push: Push) -> None:
    assert push.ws.run("scim", "held").code == 2


def _events(store: Store, run_id: int) -> list[Any]:
    with store.session() as session:
        return list_events(session, run_id)


def test_requests_held_at_the_same_moment_join_one_plan(push: Push) -> None:
    import threading

    import service.scim_hold
    from service import scim

    push.deactivate(0), push.deactivate(1)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def lock_together(*args: Any, **kwargs: Any) -> Any:
        barrier.wait(timeout=10)  # both passed the check before either writes
        return original(*args, **kwargs)

    def deactivate(n: int) -> None:
        try:
            scim.patch_user(push.settings, push.store, "okta", push.users[n]["id"],
                            scim.parse_patch({"Operations": [{"op": "replace", "value": {"active": False}}]}),
                            request=f"PATCH /Users/{push.users[n]['id']}")
            statuses.append(200)
        except scim.Problem as problem:
            statuses.append(problem.status)

    original = service.scim_hold.lock_held
    service.scim_hold.lock_held = lock_together  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=deactivate, args=(n,)) for n in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        service.scim_hold.lock_held = original  # type: ignore[assignment]

    assert statuses == [503, 503]
    assert sorted(push.plan().deactivations) == ["u2@example.com", "u3@example.com"]
