"""Which user a held SCIM request is about, when its plan is approved: a request to
`/Users/{id}` addressed a SCIM resource, so what it holds is found by that SCIM id, not by
the email the user had when it was held. On SQLite and PostgreSQL.

`[safety] max_deactivations = 2`: u0 and u1 are deactivated at once, what follows is held.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import freezegun

from reconcile import clock
from tests.scim.conftest import Push
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


def dropped_details(push: Push, run_id: int | None) -> list[str]:
    return [e.detail or "" for e in _events(push, run_id) if e.outcome == "rejected"]


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


def test_a_retry_after_a_rename_is_not_held_twice(push: Push) -> None:
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
