"""`dirsync explain` for objects of a push directory: the SCIM binding, the pushed requests
that changed them (method and path), the directory's token expiry, what S2 holds."""

from __future__ import annotations

from tests.scim.conftest import Push


def test_explain_a_pushed_user_shows_its_binding_requests_and_token(push: Push) -> None:
    user = push.okta.create_user("ann@example.com", externalId="00u-ann")
    renamed = push.okta.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "name.givenName", "value": "Anne"}])
    assert renamed.status_code == 200

    shown = push.ws.run("explain", "ann@example.com")
    as_json = push.ws.run("explain", "ann@example.com", "--json").json()

    assert shown.code == 0
    assert f"SCIM: id {user['id']!r}, externalId '00u-ann'" in shown.out
    assert "SCIM token of 'okta' expires" in shown.out
    lines = [line.strip() for line in shown.out.splitlines() if line.strip().startswith("pushed ")]
    assert lines[0].endswith(f"PATCH /Users/{user['id']}: update-user")
    assert lines[1].endswith("POST /Users: create-user")
    scim = as_json["scim"]
    assert (scim["directory"], scim["scim_id"], scim["external_id"]) == ("okta", user["id"], "00u-ann")
    assert scim["token_expires_at"] is not None
    assert [r["request"] for r in scim["requests"]] == [f"PATCH /Users/{user['id']}", "POST /Users"]


def test_explain_a_pushed_group_shows_its_binding_and_member_requests(push: Push) -> None:
    group = push.okta.create_group("Engineering")
    added = push.okta.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members",
                                                        "value": [{"value": push.users[0]["id"]}]}])
    assert added.status_code in (200, 204)

    shown = push.ws.run("explain", "Engineering")

    assert shown.code == 0
    assert f"SCIM: id {group['id']!r}, no externalId (the binding is the SCIM id)" in shown.out
    assert "members: 1" in shown.out
    pushed = [line.strip() for line in shown.out.splitlines() if line.strip().startswith("pushed ")]
    assert pushed[0].endswith(f"PATCH /Groups/{group['id']}: add-member")
    assert pushed[1].endswith("POST /Groups: create-group")


def test_explain_shows_a_held_deactivation_until_it_is_withdrawn(push: Push) -> None:
    push.deactivate(0), push.deactivate(1)
    assert push.deactivate(2).status_code == 503
    run = push.plan().run_id

    held = push.ws.run("explain", "u2@example.com").out
    push.reactivate(2)
    withdrawn = push.ws.run("explain", "u2@example.com").out

    assert f"staged in run {run}, awaiting approval: deactivate-user u2@example.com" in held
    assert "awaiting approval" not in withdrawn


def test_explain_a_user_the_idp_deleted_says_the_binding_ended(push: Push) -> None:
    assert push.okta.delete(f"/Users/{push.users[0]['id']}").status_code == 204

    shown = push.ws.run("explain", "u0@example.com")

    assert "SCIM: the IdP's DELETE ended the binding (GET is 404); still managed by 'okta'" in shown.out
    assert any(line.strip().endswith(f"DELETE /Users/{push.users[0]['id']}: deactivate-user, link-user")
               for line in shown.out.splitlines())


def test_explain_an_object_of_a_pull_directory_has_no_scim_part(ws) -> None:
    ws.write_directory(users=[{"id": "1", "email": "bo@example.com", "active": True}])
    assert ws.run("sync", "hr").code == 0

    shown = ws.run("explain", "bo@example.com", "--json").json()

    assert shown["managed_by"] == "hr" and shown["scim"] is None
