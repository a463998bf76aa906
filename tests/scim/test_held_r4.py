"""R4 when a push directory's held plan is approved: the held operations it applies are
judged as the planner judges a plan (`plan_admin.hold_last_admins_among`), so a held
deactivation of the last active administrator is held again with the planner's reason,
not refused at write time; on SQLite and PostgreSQL.

`[safety] max_deactivations = 2`: u0 and u1 are deactivated at once, what follows is held.
"""

from __future__ import annotations

from typing import Any

import reconcile.staging
import service.scim_hold
from service import admin
from service.staging import Decision, approve, open_staged
from store import Store, SyncRun, list_events
from reconcile import clock
from store.events import insert_events
from store.export import export_state
from store.held import carry_over, last_seq, lock_held, open_held_plan
from tests.scim.conftest import Push


def administrators(push: Push, *members: int) -> None:
    """Okta pushes Administrators (under its alias) with users `members`."""
    push.okta.create_group("Split_Administrators", [push.users[n]["id"] for n in members])


def held(push: Push, *requests: Any) -> int:
    """Deactivate u0 and u1 (applied), then send `requests`, each held: the plan's run id."""
    assert [push.deactivate(n).status_code for n in (0, 1)] == [200, 200]
    assert [request().status_code for request in requests] == [503] * len(requests)
    return push.plan().run_id


def events(store: Store, run_id: int, outcome: str) -> list[tuple[str, str | None]]:
    with store.session() as session:
        return [(e.target, e.reason) for e in list_events(session, run_id) if e.outcome == outcome]


def status(store: Store, run_id: int | None) -> str:
    with store.session() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        return run.status


def approved(push: Push, run: int) -> Decision:
    decision = approve(push.settings, run, by="alice", store=push.store)
    assert decision.status == "approved" and decision.run_id is not None
    return decision


def r4_note(count: int, run_id: int | None) -> str:
    return (f"{count} approved change{'s' if count > 1 else ''} held: 'Administrators' must keep an active member"
            f" (R4); see `dirsync events {run_id}`")


def test_the_held_deactivation_of_the_only_administrator_is_held_by_r4_and_the_approval_succeeds(
        push: Push) -> None:
    administrators(push, 4)
    run = held(push, lambda: push.deactivate(4))

    decision = approved(push, run)

    assert push.active()["u4@example.com"] is True
    assert events(push.store, decision.run_id, "rejected") == [("u4@example.com", "last-active-administrator")]
    assert events(push.store, decision.run_id, "conflict") == []
    assert status(push.store, decision.run_id) == "succeeded" and decision.error is None
    assert decision.note == r4_note(1, decision.run_id)
    assert open_staged(push.store, "okta") == []


def test_the_cli_says_how_many_approved_changes_r4_held_and_exits_0(push: Push) -> None:
    administrators(push, 4)
    run = held(push, lambda: push.deactivate(4))

    result = push.ws.run("approve", str(run))

    assert result.code == 0, result.err
    approval = int(result.out.split("applied in run ")[1].split()[0])
    assert f"  {r4_note(1, approval)}" in result.out
    assert push.active()["u4@example.com"] is True


def test_of_two_administrators_whose_deactivations_are_both_held_r4_holds_both_as_the_planner_does(
        push: Push) -> None:
    # The plan deactivates every active member and keeps both in the group: like a cycle's
    # plan (docs/rules.md, R4), the approval holds both deactivations, not one chosen by order.
    administrators(push, 3, 4)
    run = held(push, lambda: push.deactivate(3), lambda: push.deactivate(4))

    decision = approved(push, run)

    assert (push.active()["u3@example.com"], push.active()["u4@example.com"]) == (True, True)
    assert sorted(events(push.store, decision.run_id, "rejected")) == [
        ("u3@example.com", "last-active-administrator"), ("u4@example.com", "last-active-administrator")]
    assert status(push.store, decision.run_id) == "succeeded" and decision.note == r4_note(2, decision.run_id)


def test_of_two_held_administrators_the_one_a_delete_takes_out_goes_and_the_other_is_held(push: Push) -> None:
    administrators(push, 3, 4)
    run = held(push, lambda: push.deactivate(3), lambda: push.okta.delete(f"/Users/{push.users[4]['id']}"))

    decision = approved(push, run)

    assert (push.active()["u3@example.com"], push.active()["u4@example.com"]) == (True, False)
    assert push.okta.get(f"/Users/{push.users[4]['id']}").status_code == 404  # the DELETE was applied whole
    assert events(push.store, decision.run_id, "rejected") == [("u3@example.com", "last-active-administrator")]
    assert status(push.store, decision.run_id) == "succeeded" and decision.note == r4_note(1, decision.run_id)


def test_a_held_administrator_whose_colleague_stays_active_is_deactivated(push: Push) -> None:
    administrators(push, 3, 4)
    run = held(push, lambda: push.deactivate(4))

    decision = approved(push, run)

    assert (push.active()["u3@example.com"], push.active()["u4@example.com"]) == (True, False)
    assert events(push.store, decision.run_id, "rejected") == []
    assert status(push.store, decision.run_id) == "succeeded" and decision.note is None


def test_a_held_plan_without_administrators_is_applied_as_before(push: Push) -> None:
    administrators(push, 4)
    run = held(push, lambda: push.deactivate(2), lambda: push.deactivate(3))

    decision = approved(push, run)

    assert decision.applied is not None and decision.applied.applied == 2
    assert (push.active()["u2@example.com"], push.active()["u3@example.com"]) == (False, False)
    assert events(push.store, decision.run_id, "rejected") == []
    assert status(push.store, decision.run_id) == "succeeded" and decision.note is None


def test_the_note_names_both_the_r4_holds_and_the_requests_held_meanwhile(push: Push, monkeypatch: Any) -> None:
    administrators(push, 4)
    run = held(push, lambda: push.deactivate(4))
    real_apply = reconcile.staging.apply

    def apply_after_another_hold(*args: Any, **kwargs: Any) -> Any:
        assert push.deactivate(2).status_code == 503  # held during the approval
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_another_hold)

    decision = approved(push, run)

    later = push.plan()
    assert later.run_id != run and later.deactivations == ("u2@example.com",)
    assert decision.note == (f"{r4_note(1, decision.run_id)};"
                             f" requests held meanwhile wait in the staged plan of run {later.run_id}")
    assert status(push.store, decision.run_id) == "succeeded"


def groups_of(push: Push, email: str) -> set[str]:
    with push.store.session() as session:
        return {g["name"] for g in export_state(session)["groups"] if email in g["members"]}


def test_a_held_delete_of_the_only_administrator_waits_whole_and_its_retry_is_judged_again(push: Push) -> None:
    # A request is written whole or not at all: R4 holds the DELETE's deactivation, so its
    # unbinding and its removals from other groups wait with it. The administrator stays
    # bound, in Staff too, and the IdP's retry of the DELETE is judged again as a request.
    administrators(push, 4)
    push.okta.create_group("Staff", [push.users[4]["id"]])
    user = f"/Users/{push.users[4]['id']}"
    run = held(push, lambda: push.okta.delete(user))

    decision = approved(push, run)

    assert push.active()["u4@example.com"] is True
    assert groups_of(push, "u4@example.com") == {"Administrators", "Staff"}
    assert push.okta.get(user).status_code == 200  # still bound: the IdP can address it
    rejected = events(push.store, decision.run_id, "rejected")
    assert ("u4@example.com", "last-active-administrator") in rejected
    assert {reason for _, reason in rejected} == {"last-active-administrator", "admin-group-would-be-empty",
                                                  "request-refused"}
    assert ("Staff", "request-refused") in rejected and ("u4@example.com", "request-refused") in rejected
    assert events(push.store, decision.run_id, "applied") == []
    assert status(push.store, decision.run_id) == "succeeded"
    assert decision.note == r4_note(len(rejected), decision.run_id)
    assert push.okta.delete(user).status_code == 503  # within the hour: held again, nothing applied
    assert push.active()["u4@example.com"] is True and push.okta.get(user).status_code == 200


def test_a_held_delete_of_someone_else_is_applied_whole(push: Push) -> None:
    administrators(push, 4)
    push.okta.create_group("Staff", [push.users[2]["id"], push.users[4]["id"]])
    run = held(push, lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))

    decision = approved(push, run)

    assert push.active()["u2@example.com"] is False and groups_of(push, "u2@example.com") == set()
    assert push.okta.get(f"/Users/{push.users[2]['id']}").status_code == 404
    assert events(push.store, decision.run_id, "rejected") == [] and decision.note is None


def bound(push: Push, n: int) -> bool:
    return bool(push.okta.get(f"/Users/{push.users[n]['id']}").status_code == 200)


def test_a_deactivation_then_a_delete_of_the_only_local_administrator_both_wait(push: Push) -> None:
    # Administrators is local here, so the DELETE itself does not leave it; its unbinding and
    # its removal from Staff are held in the plan under a request of their own, after the
    # deactivation R4 holds: all of the user's held changes wait together.
    admin.add_member(push.settings, push.store, "Administrators", "u4@example.com")
    push.okta.create_group("Staff", [push.users[4]["id"]])
    run = held(push, lambda: push.deactivate(4), lambda: push.okta.delete(f"/Users/{push.users[4]['id']}"))

    decision = approved(push, run)

    assert push.active()["u4@example.com"] is True and bound(push, 4)
    assert groups_of(push, "u4@example.com") == {"Administrators", "Staff"}
    assert decision.note == r4_note(len(events(push.store, decision.run_id, "rejected")), decision.run_id)


def test_a_held_delete_whose_deactivation_the_idp_took_back_is_not_applied_in_part(push: Push) -> None:
    push.okta.create_group("Staff", [push.users[2]["id"]])
    run = held(push, lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))
    assert push.reactivate(2).status_code == 200  # the IdP takes it back

    decision = approved(push, run)

    assert push.active()["u2@example.com"] is True and bound(push, 2)
    assert groups_of(push, "u2@example.com") == {"Staff"}
    assert decision.dropped and all(op.target in ("u2@example.com", "Staff") for op in decision.dropped)


def test_the_note_counts_the_rejections_the_events_hold(push: Push) -> None:
    administrators(push, 3, 4)
    run = held(push, lambda: push.okta.delete(f"/Users/{push.users[3]['id']}"),
               lambda: push.okta.delete(f"/Users/{push.users[4]['id']}"))

    decision = approved(push, run)

    assert (push.active()["u3@example.com"], push.active()["u4@example.com"]) == (True, True)
    assert decision.note == r4_note(len(events(push.store, decision.run_id, "rejected")), decision.run_id)


def test_the_rest_of_a_held_delete_carried_to_a_later_plan_is_not_applied_alone(
        push: Push, monkeypatch: Any) -> None:
    administrators(push, 4)
    user = f"/Users/{push.users[4]['id']}"
    run = held(push, lambda: push.okta.delete(user))
    real_apply = reconcile.staging.apply

    def apply_after_a_retry(*args: Any, **kwargs: Any) -> Any:
        push.okta.create_group("Ops", [push.users[4]["id"]])
        assert push.okta.delete(user).status_code == 503  # held: adds the removal from Ops
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_a_retry)
    approved(push, run)
    monkeypatch.setattr(reconcile.staging, "apply", real_apply)
    approved(push, push.plan().run_id)

    assert push.active()["u4@example.com"] is True and bound(push, 4)
    assert groups_of(push, "u4@example.com") == {"Administrators", "Ops"}


def put(push: Push, n: int, email: str, *, active: bool) -> Any:
    return push.okta.put(f"/Users/{push.users[n]['id']}", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": push.users[n]["id"], "userName": email,
        "name": {"givenName": "Ann", "familyName": "Lee"}, "emails": [{"primary": True, "value": email}],
        "active": active})


def test_a_held_put_that_renames_and_deactivates_is_applied_whole(push: Push) -> None:
    # Its two events carry different emails (the new one, the old one): one request still.
    run = held(push, lambda: put(push, 2, "new2@example.com", active=False))

    decision = approved(push, run)

    assert push.active().get("new2@example.com") is False and decision.dropped == ()


def test_a_held_put_that_renames_and_deactivates_the_only_administrator_waits_whole(push: Push) -> None:
    administrators(push, 4)
    run = held(push, lambda: put(push, 4, "new4@example.com", active=False))

    decision = approved(push, run)

    assert push.active().get("u4@example.com") is True and "new4@example.com" not in push.active()
    assert sorted(reason for _, reason in events(push.store, decision.run_id, "rejected")) == [
        "last-active-administrator", "request-refused"]
    assert decision.note == r4_note(2, decision.run_id)


def test_a_delete_taken_back_stays_undone_when_a_later_deactivation_is_held_anew(push: Push) -> None:
    push.okta.create_group("Staff", [push.users[2]["id"]])
    run = held(push, lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))
    assert push.reactivate(2).status_code == 200  # the IdP takes the DELETE back
    assert push.deactivate(2).status_code == 503  # and later deactivates: held anew

    approved(push, run)

    assert push.active()["u2@example.com"] is False  # the later request: a deactivation only
    assert bound(push, 2) and groups_of(push, "u2@example.com") == {"Staff"}


def test_the_rest_of_a_delete_held_after_its_deactivation_is_applied_by_a_later_approval(
        push: Push, monkeypatch: Any) -> None:
    push.okta.create_group("Staff", [push.users[2]["id"]])
    user = f"/Users/{push.users[2]['id']}"
    run = held(push, lambda: push.deactivate(2))
    real_apply = reconcile.staging.apply

    def apply_after_a_delete(*args: Any, **kwargs: Any) -> Any:
        assert push.okta.delete(user).status_code == 503  # its deactivation is held: the rest is added
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_a_delete)
    approved(push, run)  # deactivates u2
    monkeypatch.setattr(reconcile.staging, "apply", real_apply)
    approved(push, push.plan().run_id)

    assert push.active()["u2@example.com"] is False
    assert not bound(push, 2) and groups_of(push, "u2@example.com") == set()


def test_a_rename_held_after_a_deactivation_is_applied_once_that_is(push: Push, monkeypatch: Any) -> None:
    # During the approval the IdP renames u2 with active:false: only the rename is held
    # (the deactivation is held already) and waits in a later plan; its event names the new
    # email, the row still has the old one.
    run = held(push, lambda: push.deactivate(2))
    real_apply = reconcile.staging.apply

    def apply_after_a_put(*args: Any, **kwargs: Any) -> Any:
        assert put(push, 2, "new2@example.com", active=False).status_code == 503
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_a_put)
    approved(push, run)
    monkeypatch.setattr(reconcile.staging, "apply", real_apply)
    approved(push, push.plan().run_id)

    assert push.active().get("new2@example.com") is False


def test_a_request_following_a_deactivation_taken_back_is_dropped_even_when_another_is_held_anew(
        push: Push) -> None:
    push.okta.create_group("Staff", [push.users[2]["id"]])
    run = held(push, lambda: push.deactivate(2), lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))
    assert push.reactivate(2).status_code == 200  # takes back the deactivation the DELETE followed
    assert push.deactivate(2).status_code == 503  # held anew: a deactivation only

    approved(push, run)

    assert push.active()["u2@example.com"] is False
    assert bound(push, 2) and groups_of(push, "u2@example.com") == {"Staff"}


def _withdrawals_do_not_wait(monkeypatch: Any) -> None:
    """A withdrawal is refused while a decision holds the directory's lease
    (`service.scim_hold.withdraw_if_held`); these write theirs during the approval, as one
    would beside a decision that holds none, to pin what carry-over does with them."""
    monkeypatch.setattr(service.scim_hold, "is_live", lambda *args, **kwargs: False)


def test_a_withdrawal_during_an_approval_stays_with_the_plan_it_withdraws_from(
        push: Push, monkeypatch: Any) -> None:
    # Carried over alone, it made the next plan count -1 held deactivations: one more
    # deactivation passed the hourly limit, and a later one could no longer be taken back.
    run = held(push, lambda: push.deactivate(2))
    real_apply = reconcile.staging.apply
    _withdrawals_do_not_wait(monkeypatch)

    def apply_after_a_reactivation(*args: Any, **kwargs: Any) -> Any:
        assert push.reactivate(2).status_code == 200
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", apply_after_a_reactivation)
    approved(push, run)
    monkeypatch.setattr(reconcile.staging, "apply", real_apply)

    assert open_staged(push.store, "okta") == []
    assert [push.deactivate(3).status_code, push.deactivate(4).status_code] == [503, 503]
    assert push.plan().deactivations == ("u3@example.com", "u4@example.com")
    assert push.reactivate(4).status_code == 200  # the IdP takes u4's back
    approved(push, push.plan().run_id)
    assert (push.active()["u3@example.com"], push.active()["u4@example.com"]) == (False, True)


def held_deactivations(push: Push) -> int | None:
    with push.store.session() as session:
        found = open_held_plan(session, push.directory)
        return None if found is None else found.deactivations


def test_withdrawals_during_an_approval_move_only_with_what_they_withdraw(push: Push, monkeypatch: Any) -> None:
    run = held(push, lambda: push.deactivate(2))
    real_apply = reconcile.staging.apply
    _withdrawals_do_not_wait(monkeypatch)

    def during(*args: Any, **kwargs: Any) -> Any:
        assert push.reactivate(2).status_code == 200  # withdraws one held before: stays
        assert [push.deactivate(3).status_code, push.deactivate(4).status_code] == [503, 503]  # move
        assert push.reactivate(4).status_code == 200  # withdraws one held meanwhile: moves with it
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(reconcile.staging, "apply", during)
    approved(push, run)
    monkeypatch.setattr(reconcile.staging, "apply", real_apply)

    assert held_deactivations(push) == 1 and push.plan().deactivations == ("u3@example.com",)
    assert push.reactivate(3).status_code == 200 and held_deactivations(push) == 0
    approved(push, push.plan().run_id)
    assert (push.active()["u3@example.com"], push.active()["u4@example.com"]) == (True, True)


def test_a_plan_carries_over_more_events_than_a_statement_takes_parameters(push: Push) -> None:
    # PostgreSQL takes at most 65,535 parameters a statement: the move goes by range.
    run = held(push, lambda: push.deactivate(2))
    with push.store.session() as session:
        upto = last_seq(session, run)
    now = clock.now()
    with push.store.session(write=True) as session:
        insert_events(session, [{
            "run_id": run, "seq": upto + 1 + n, "action": "remove-member", "kind": "membership", "target": "Staff",
            "outcome": "staged", "reason": None, "detail": f"DELETE /Users/x{n}", "old": {"member": f"x{n}@x.com"},
            "new": None, "at": now, "user_key": f"x{n}@x.com", "group_key": "staff"} for n in range(66_000)])
    with push.store.session(write=True) as session:
        lock_held(session, "okta")
        later = carry_over(session, run, "okta", after_seq=upto)

    assert later is not None
    with push.store.session() as session:
        assert last_seq(session, later) == upto + 66_000 and last_seq(session, run) == upto


def test_a_put_that_renames_and_reactivates_takes_back_the_held_deactivation(push: Push) -> None:
    # The deactivation is held under the email the user had; the PUT names the new one.
    run = held(push, lambda: push.deactivate(2))
    assert put(push, 2, "new2@example.com", active=True).status_code == 200

    assert held_deactivations(push) == 0
    decision = approved(push, run)
    assert push.active().get("new2@example.com") is True
    assert events(push.store, decision.run_id, "applied") == []
