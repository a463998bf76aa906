"""What a person reads of held SCIM requests (`dirsync staged`, the console, `explain`, an
approval's dropped operations): the user an approval would change, named by the email
they have now, not the one they had when the request was held; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from service.explain import explain
from store.models import users
from tests.scim.conftest import Push
from tests.scim.test_held_identity import _events, local_user, plan_listing, post_user, rename
from tests.scim.test_held_r4 import approved, groups_of, held


def staged_targets(push: Push, email: str) -> list[tuple[str, str]]:
    """What `dirsync explain EMAIL` says is staged for that user, awaiting approval."""
    return [(e.action, e.target) for e in explain(push.store, email).staged]


def held_then_renamed_and_email_taken(push: Push) -> int:
    """u2's deactivation is held; the IdP renames u2 to new2@ (applied at once) and
    creates someone else as u2@. The plan's run id."""
    run = held(push, lambda: push.deactivate(2))
    rename(push, 2, "new2@example.com")
    assert post_user(push, "u2@example.com", active=True).status_code == 201
    return run


def test_the_listing_names_the_user_a_held_deactivation_is_about_after_a_rename(push: Push) -> None:
    run = held_then_renamed_and_email_taken(push)

    assert plan_listing(push)[0] == ("new2@example.com",)

    approved(push, run)  # whom it listed is whom the approval deactivates
    assert push.active()["new2@example.com"] is False and push.active()["u2@example.com"] is True


def test_explain_shows_a_held_deactivation_under_the_user_it_is_about_after_a_rename(push: Push) -> None:
    run = held_then_renamed_and_email_taken(push)

    assert staged_targets(push, "new2@example.com") == [("deactivate-user", "new2@example.com")]
    steps = explain(push.store, "new2@example.com").steps
    assert any(f"staged in run {run}, awaiting approval" in step for step in steps)
    assert staged_targets(push, "u2@example.com") == []  # whoever took the email: nothing waits on them
    assert not any("awaiting approval" in step for step in explain(push.store, "u2@example.com").steps)


def test_a_held_delete_lists_its_removals_under_the_users_email_now(push: Push) -> None:
    push.okta.create_group("Staff", [push.users[2]["id"]])
    held(push, lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))
    rename(push, 2, "new2@example.com")

    assert plan_listing(push) == (("new2@example.com",), ({"group": "Staff", "email": "new2@example.com"},))
    assert ("remove-member", "Staff") in staged_targets(push, "new2@example.com")


def test_a_held_post_still_lists_under_its_email_and_explain_finds_it(push: Push) -> None:
    local_user(push, "ann@example.com")
    held(push, lambda: post_user(push, "ann@example.com", active=False))

    assert plan_listing(push)[0] == ("ann@example.com",)
    assert ("deactivate-user", "ann@example.com") in staged_targets(push, "ann@example.com")


def test_a_held_deactivation_whose_user_is_bound_no_more_lists_under_its_own_email(push: Push) -> None:
    held(push, lambda: push.deactivate(2))
    with push.store.session(write=True) as session:  # unbound meanwhile (as an admin's unlink would)
        session.execute(update(users).where(users.c.email == "u2@example.com").values(scim_id=None))

    assert plan_listing(push)[0] == ("u2@example.com",)


def test_what_an_approval_drops_names_the_user_by_their_email_now(push: Push) -> None:
    push.okta.create_group("Staff", [push.users[2]["id"]])
    run = held(push, lambda: push.okta.delete(f"/Users/{push.users[2]['id']}"))
    rename(push, 2, "new2@example.com")
    assert push.reactivate(2).status_code == 200  # the IdP takes it back

    decision = approved(push, run)

    assert push.active()["new2@example.com"] is True and groups_of(push, "new2@example.com") == {"Staff"}
    dropped = [e for e in _events(push, decision.run_id) if e.outcome == "rejected"]
    assert {e.target for e in dropped if e.kind == "user"} == {"new2@example.com"}
    assert {(e.old or {}).get("member") for e in dropped if e.action == "remove-member"} == {"new2@example.com"}
    assert {e.user_key for e in dropped} == {"new2@example.com"}
