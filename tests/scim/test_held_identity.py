"""Which user a held SCIM request is about, when its plan is approved: a request to
`/Users/{id}` addressed a SCIM resource, so what it holds is found by that SCIM id, not by
the email the user had when it was held; a `POST /Users` addressed an email, and the local
user it links is bound by its own held link. On SQLite and PostgreSQL.

`[safety] max_deactivations = 2`: u0 and u1 are deactivated at once, what follows is held.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import freezegun
import pytest
from sqlalchemy import delete, update

from reconcile import clock
from reconcile.rules import email_key
from service import admin
from service.staging import open_staged
from store.held_read import OVERTAKEN_IN_PART
from store.models import users
from tests.scim.conftest import Push, Scim
from tests.scim.test_held_r4 import approved, bound, events, groups_of, held, held_deactivations


def rename(push: Push, n: int, email: str) -> None:
    """The IdP changes u`n`'s userName only: no deactivation, so it is applied at once."""
    response = push.okta.patch(f"/Users/{push.users[n]['id']}", [{"op": "replace", "path": "userName",
                                                                  "value": email}])
    assert response.status_code == 200, response.text


def post_user(push: Push, email: str, *, active: bool) -> Any:
    return push.okta.post("/Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
        "name": {"givenName": "Ann", "familyName": "Lee"}, "emails": [{"primary": True, "value": email}],
        "active": active})


def found(push: Push, email: str) -> list[dict[str, Any]]:
    """The users the IdP finds under `email`."""
    body = push.okta.get("/Users", params={"filter": f'userName eq "{email}"'}).json()
    return list(body.get("Resources", []))


def dropped_details(push: Push, run_id: int | None) -> list[str]:
    return [e.detail or "" for e in _events(push, run_id) if e.outcome == "rejected"]


def plan_listing(push: Push) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    """The open plan's held deactivations and removals as `dirsync staged` and the console list them."""
    [view] = open_staged(push.store, "okta")
    return view.deactivations, view.removals


def _events(push: Push, run_id: int | None) -> list[Any]:
    from store import list_events

    with push.store.session() as session:
        return list_events(session, run_id)


# --- /Users/{id}: found by its SCIM id -------------------------------------------------------------


def test_a_held_deactivation_of_a_user_renamed_since_is_applied_to_that_user(push: Push) -> None:
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")

    decision = approved(push, run)

    assert push.active()["new2@example.com"] is False
    assert decision.dropped == ()
    assert events(push.store, decision.run_id, "applied") == [("new2@example.com", None)]


def test_a_held_deactivation_never_reaches_whoever_took_the_users_old_email(push: Push) -> None:
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")
    assert post_user(push, "u2@example.com", active=True).status_code == 201  # someone else, same directory

    approved(push, run)

    assert push.active()["new2@example.com"] is False
    assert push.active()["u2@example.com"] is True


def test_active_true_after_a_rename_takes_back_the_deactivation_held_under_the_old_email(push: Push) -> None:
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")

    assert push.reactivate(2).status_code == 200

    assert held_deactivations(push) == 0
    approved(push, run)
    assert push.active()["new2@example.com"] is True


def test_active_true_for_whoever_took_the_old_email_takes_back_nothing_of_the_first_user(push: Push) -> None:
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")
    other = post_user(push, "u2@example.com", active=True).json()

    assert push.okta.patch(f"/Users/{other['id']}", [{"op": "replace", "path": "active",
                                                      "value": True}]).status_code == 200

    assert held_deactivations(push) == 1
    approved(push, run)
    assert (push.active()["new2@example.com"], push.active()["u2@example.com"]) == (False, True)


@pytest.mark.parametrize("directory", ["push", "push_scim"])  # push_scim: a directory named `scim`
def test_a_retry_after_a_rename_is_not_held_twice(directory: str, store_url: str,
                                                  request: pytest.FixtureRequest) -> None:
    push: Push = request.getfixturevalue(directory)  # on the store `store_url` names
    held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")

    retried = push.deactivate(2)

    assert retried.status_code == 503 and "held already" in retried.json()["detail"]
    assert held_deactivations(push) == 1


def test_a_held_delete_that_followed_a_deactivation_taken_back_stays_dropped_after_a_rename(push: Push) -> None:
    # The DELETE held after u2's deactivation goes where that deactivation goes: it was
    # taken back, so the DELETE is dropped, though u2 is renamed and inactive by then.
    push.okta.create_group("Staff", [push.users[2]["id"]])
    run = held(push, lambda: push.deactivate(2), lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))
    assert push.reactivate(2).status_code == 200  # takes back the deactivation the DELETE followed
    rename(push, 2, "new2@example.com")
    with freezegun.freeze_time(clock.now() + timedelta(hours=2)):  # the hour has room again
        assert push.deactivate(2).status_code == 200  # a deactivation only, applied at once

    decision = approved(push, run)

    assert push.active()["new2@example.com"] is False
    assert bound(push, 2) and groups_of(push, "new2@example.com") == {"Staff"}
    followed = "not applied: the user's deactivation it came with was not applied"
    assert dropped_details(push, decision.run_id).count(followed) == 2  # the removal and the unbinding


# --- POST /Users: the local user it links ----------------------------------------------------------


def local_user(push: Push, email: str) -> None:
    admin.add_user(push.settings, push.store, email)


def test_a_held_post_that_links_a_local_user_and_deactivates_it_is_applied_whole(push: Push) -> None:
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))

    decision = approved(push, run)

    assert decision.dropped == ()
    [user] = found(push, "ann@example.com")
    assert user["active"] is False and push.active()["ann@example.com"] is False


def test_a_held_post_whose_link_is_in_place_already_is_applied_whole(push: Push) -> None:
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))
    [link] = [e for e in _events(push, run) if e.action == "link-user"]
    with push.store.session(write=True) as session:  # bound as the held link binds it
        session.execute(update(users).where(users.c.email == "ann@example.com").values(**link.new))

    decision = approved(push, run)

    assert decision.dropped == ()
    [user] = found(push, "ann@example.com")
    assert (user["id"], user["active"]) == (link.new["scim_id"], False)


def test_a_held_post_whose_user_another_directory_bound_meanwhile_is_dropped_whole(push: Push) -> None:
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))
    with push.store.session(write=True) as session:  # linked by another directory's cycle
        session.execute(update(users).where(users.c.email == "ann@example.com")
                        .values(managed_by="hr", external_id="hr-7"))

    decision = approved(push, run)

    assert push.active()["ann@example.com"] is True and found(push, "ann@example.com") == []
    assert {op.action.value for op in decision.dropped} >= {"link-user", "deactivate-user"}
    assert set(dropped_details(push, decision.run_id)) == {
        "not applied: the user has since been bound to directory 'hr'"}


def test_a_held_post_whose_user_a_later_post_linked_is_dropped_whole(push: Push) -> None:
    # The IdP's later POST says the user is active: it links them at once, under its own
    # SCIM id, and takes back the held POST's deactivation; its link is dropped too.
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))
    later = post_user(push, "ann@example.com", active=True)
    assert later.status_code == 201

    decision = approved(push, run)

    [user] = found(push, "ann@example.com")
    assert (user["id"], user["active"]) == (later.json()["id"], True)
    assert decision.dropped and all(op.target == "ann@example.com" for op in decision.dropped)
    dropped = {(e.action, e.detail) for e in _events(push, decision.run_id) if e.outcome == "rejected"}
    assert {(action, "another SCIM id" in (detail or "")) for action, detail in dropped
            if action != "deactivate-user"} == {("link-user", True), ("update-user", True)}
    assert {detail for action, detail in dropped if action == "deactivate-user"} == {
        "not applied: withdrawn (event 3): POST /Users says the user is active"}


def test_a_held_post_and_its_retries_link_the_user_once(push: Push) -> None:
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False),
               lambda: post_user(push, "ann@example.com", active=False))  # the IdP's retry

    decision = approved(push, run)

    [user] = found(push, "ann@example.com")
    assert user["active"] is False
    assert [op.action.value for op in decision.dropped] == ["link-user"]  # the retry's own link
    assert post_user(push, "ann@example.com", active=False).status_code == 409  # the next retry: it exists


def test_a_held_post_that_deactivates_the_only_administrator_waits_whole(push: Push) -> None:
    local_user(push, "ann@example.com")
    admin.add_member(push.settings, push.store, "Administrators", "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))

    decision = approved(push, run)

    assert push.active()["ann@example.com"] is True and found(push, "ann@example.com") == []
    assert {reason for _, reason in events(push.store, decision.run_id, "rejected")} == {
        "last-active-administrator", "request-refused"}
    assert decision.dropped == ()


# --- held already: the same request's user, not the same email -------------------------------------


def deactivate_id(push: Push, scim_id: str) -> Any:
    return push.okta.patch(f"/Users/{scim_id}", [{"op": "replace", "value": {"active": False}}])


def test_the_deactivation_of_whoever_took_a_held_users_old_email_is_held_for_them(push: Push) -> None:
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")
    other = post_user(push, "u2@example.com", active=True).json()

    response = deactivate_id(push, other["id"])

    assert response.status_code == 503 and "held already" not in response.json()["detail"]
    assert held_deactivations(push) == 2
    approved(push, run)
    assert (push.active()["new2@example.com"], push.active()["u2@example.com"]) == (False, False)


def test_active_true_for_whoever_took_the_old_email_takes_back_their_own_held_deactivation(push: Push) -> None:
    # Both held deactivations read alike (u2@example.com): the withdrawal names its own.
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")
    other = post_user(push, "u2@example.com", active=True).json()
    assert deactivate_id(push, other["id"]).status_code == 503

    assert push.okta.patch(f"/Users/{other['id']}", [{"op": "replace", "path": "active",
                                                      "value": True}]).status_code == 200

    assert held_deactivations(push) == 1
    approved(push, run)
    assert (push.active()["new2@example.com"], push.active()["u2@example.com"]) == (False, True)


def test_a_deactivation_under_the_id_a_later_post_linked_is_not_taken_for_the_held_posts(push: Push) -> None:
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))
    later = post_user(push, "ann@example.com", active=True)
    assert later.status_code == 201

    response = deactivate_id(push, later.json()["id"])

    assert response.status_code == 503 and "held already" not in response.json()["detail"]
    approved(push, run)
    [user] = found(push, "ann@example.com")
    assert (user["id"], user["active"]) == (later.json()["id"], False)


def test_a_later_post_that_says_active_takes_back_the_held_posts_deactivation(push: Push) -> None:
    local_user(push, "ann@example.com")
    held(push, lambda: post_user(push, "ann@example.com", active=False))
    assert held_deactivations(push) == 1

    assert post_user(push, "ann@example.com", active=True).status_code == 201

    assert held_deactivations(push) == 0


def test_a_retried_post_is_held_already(push: Push) -> None:
    local_user(push, "ann@example.com")
    held(push, lambda: post_user(push, "ann@example.com", active=False))

    retried = post_user(push, "ann@example.com", active=False)

    assert retried.status_code == 503 and "held already" in retried.json()["detail"]
    assert held_deactivations(push) == 1


def test_a_held_post_is_applied_though_the_user_of_the_post_held_before_it_is_gone(push: Push) -> None:
    # Every POST has the same label: ann's vanished row must not take bob's request down.
    local_user(push, "ann@example.com")
    local_user(push, "bob@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False),
               lambda: post_user(push, "bob@example.com", active=False))
    with push.store.session(write=True) as session:
        session.execute(delete(users).where(users.c.email == "ann@example.com"))

    approved(push, run)

    assert push.active()["bob@example.com"] is False
    assert [u["userName"] for u in found(push, "bob@example.com")] == ["bob@example.com"]


def test_a_held_post_is_applied_though_the_user_of_the_post_held_after_it_is_renamed(push: Push) -> None:
    local_user(push, "ann@example.com")
    local_user(push, "bob@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False),
               lambda: post_user(push, "bob@example.com", active=False))
    with push.store.session(write=True) as session:  # an admin renames bob's local row
        session.execute(update(users).where(users.c.email == "bob@example.com")
                        .values(email="robert@example.com", email_key=email_key("robert@example.com")))

    approved(push, run)

    assert push.active()["ann@example.com"] is False


# --- a directory whose name its base URL holds twice -----------------------------------------------


def test_a_held_request_to_a_directory_named_scim_is_about_the_user_its_id_names(push_scim: Push) -> None:
    push = push_scim
    run = held(push, lambda: push.deactivate(2))
    assert {e.detail for e in _events(push, run)} == {f"PATCH /Users/{push.users[2]['id']}"}
    rename(push, 2, "new2@example.com")
    assert post_user(push, "u2@example.com", active=True).status_code == 201  # someone else

    approved(push, run)

    assert (push.active()["new2@example.com"], push.active()["u2@example.com"]) == (False, True)


def test_a_held_request_behind_a_proxy_prefix_naming_the_directory_is_labelled_by_its_route(push: Push) -> None:
    from starlette.testclient import TestClient

    from web.app import create_app

    with TestClient(create_app(push.settings, push.store), root_path="/okta") as client:
        proxied = Scim(client, "okta", push.okta.token)
        proxied.base = "/okta" + proxied.base  # the proxy's prefix names the directory too
        run = held(push, lambda: proxied.patch(f"/Users/{push.users[2]['id']}",
                                               [{"op": "replace", "value": {"active": False}}]))

    assert {e.detail for e in _events(push, run)} == {f"PATCH /Users/{push.users[2]['id']}"}


# --- a POST that omits `active` -------------------------------------------------------------------


def post_without_active(push: Push, email: str) -> Any:
    return push.okta.post("/Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
        "name": {"givenName": "Ann", "familyName": "Lee"}, "emails": [{"primary": True, "value": email}]})


def test_a_later_post_that_omits_active_takes_back_the_held_posts_deactivation(push: Push) -> None:
    local_user(push, "ann@example.com")
    run = held(push, lambda: post_user(push, "ann@example.com", active=False))

    later = post_without_active(push, "ann@example.com")

    assert later.status_code == 201 and later.json()["active"] is True
    assert held_deactivations(push) == 0 and plan_listing(push)[0] == ()
    approved(push, run)
    assert push.active()["ann@example.com"] is True


# --- a held update a later request overtook ------------------------------------------------------


def _held_put(push: Push, n: int, email: str) -> int:
    """u`n`'s PUT with a new email, no names and `active: false`, held: the plan's run id."""
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
            "emails": [{"primary": True, "value": email}], "active": False}
    return held(push, lambda: push.okta.put(f"/Users/{push.users[n]['id']}", body))


def test_a_held_update_applies_without_the_fields_a_later_request_changed(push: Push) -> None:
    run = _held_put(push, 2, "new2@example.com")
    rename(push, 2, "later2@example.com")  # the IdP's later word on the email

    decision = approved(push, run)

    assert decision.error is None and decision.dropped == ()  # the run succeeded, nothing conflicted
    [user] = found(push, "later2@example.com")
    assert (user["active"], user.get("name", {}).get("givenName")) == (False, None)  # the PUT's names apply
    [update] = [e for e in _events(push, decision.run_id) if e.action == "update-user"]
    assert (update.target, update.reason, update.new) == (
        "later2@example.com", OVERTAKEN_IN_PART, {"family_name": None, "given_name": None})


def test_a_held_update_a_later_request_overtook_whole_is_dropped_with_why(push: Push) -> None:
    rename(push, 2, "u2@example.com")  # nothing to change: the user is as the PUT below leaves the names
    assert push.okta.put(f"/Users/{push.users[2]['id']}", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u2@example.com",
        "emails": [{"primary": True, "value": "u2@example.com"}]}).status_code == 200  # no names now
    run = _held_put(push, 2, "new2@example.com")
    rename(push, 2, "later2@example.com")

    decision = approved(push, run)

    assert decision.error is None
    assert [(op.action.value, op.target) for op in decision.dropped] == [("update-user", "later2@example.com")]
    dropped = [e for e in _events(push, decision.run_id) if e.outcome == "rejected"]
    assert [e.detail for e in dropped] == [
        "not applied: a later request changed the user's email since it was held"]
    assert found(push, "later2@example.com")[0]["active"] is False
