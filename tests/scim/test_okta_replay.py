"""Okta's published SCIM 2.0 spec test (its 12 requests, research/scim.md §2.4) and its CRUD
flow, replayed as Okta sends them: OIN apps PATCH (de)activation, AIW apps only PUT."""

from __future__ import annotations

import uuid

import pytest

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
OKTA = {"User-Agent": "Okta SCIM Client 1.0.0", "Content-Type": "application/scim+json; charset=utf-8"}


def _realistic_user(email: str) -> dict:
    return {"schemas": [USER], "userName": email, "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": True, "value": email, "type": "work"}], "displayName": "Test User",
            "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "groups": [], "password": "1mz050nq",
            "active": True}


def _has_user_fields(resource: dict) -> None:
    assert resource["id"] and resource["userName"]
    assert resource["name"]["familyName"] and resource["name"]["givenName"]
    assert resource["active"] is True and resource["emails"][0]["value"]


def test_okta_scim_20_spec_test(okta) -> None:
    okta.create_user("existing@example.com")  # "Create at least one user before running"
    random_name = f"{uuid.uuid4()}@example.com"

    r1 = okta.get("/Users?count=1&startIndex=1", headers=OKTA)
    assert r1.status_code == 200 and r1.json()["schemas"] == [LIST]
    assert all(isinstance(r1.json()[k], int) for k in ("itemsPerPage", "startIndex", "totalResults"))
    first = r1.json()["Resources"][0]
    _has_user_fields(first)

    r2 = okta.get(f"/Users/{first['id']}", headers=OKTA)
    assert r2.status_code == 200
    _has_user_fields(r2.json())

    for _ in ("R3", "R5"):
        r = okta.get("/Users", params={"filter": f'userName eq "{random_name}"', "startIndex": 1, "count": 100},
                     headers=OKTA)
        assert r.status_code == 200 and r.json()["totalResults"] == 0

    r4 = okta.get(f"/Users/{uuid.uuid4()}", headers=OKTA)
    assert r4.status_code == 404 and r4.json()["schemas"] == [ERROR] and r4.json()["detail"]

    r6 = okta.post("/Users", _realistic_user(random_name), headers={"Content-Type": "application/json"})
    assert r6.status_code == 201
    created = r6.json()
    assert created["active"] is True and created["userName"] == random_name
    assert created["name"] == {"givenName": "Test", "familyName": "User"} and created["schemas"] == [USER]

    r7 = okta.get(f"/Users/{created['id']}", headers=OKTA)
    assert r7.status_code == 200 and r7.json()["userName"] == random_name

    r8 = okta.post("/Users", _realistic_user(random_name), headers={"Content-Type": "application/json"})
    assert r8.status_code == 409

    r9 = okta.get("/Users", params={"filter": f'userName eq "{random_name.upper()}"'}, headers=OKTA)
    assert r9.status_code == 200 and r9.json()["totalResults"] == 1

    r10 = okta.get("/Groups?count=100&startIndex=1", headers=OKTA)
    assert r10.status_code == 200 and r10.json()["schemas"] == [LIST]

    r11 = okta.client.get("/scim/v2/okta/Users", headers={**OKTA, "Authorization": "Bearer wrong"})
    assert r11.status_code == 401
    assert r11.json()["status"] == "401" and r11.json()["detail"] and r11.json()["schemas"] == [ERROR]

    r12 = okta.get(f"/Users/{uuid.uuid4()}", headers=OKTA)
    assert r12.json()["status"] == "404"

    deactivated = okta.patch(f"/Users/{created['id']}", [{"op": "replace", "value": {"active": False}}])
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False


def test_okta_crud_flow_with_patch(okta, store) -> None:
    """Create (filter GET then POST), update the first name (GET then full PUT), deactivate,
    reactivate, password sync."""
    email = "jane.doe@example.com"
    assert okta.get("/Users", params={"filter": f'userName eq "{email}"'}).json()["totalResults"] == 0
    user = okta.post("/Users", _realistic_user(email)).json()

    current = okta.get(f"/Users/{user['id']}").json()
    current["name"]["givenName"] = "Janet"
    updated = okta.put(f"/Users/{user['id']}", {**current, "groups": [], "password": "x"})
    assert updated.status_code == 200 and updated.json()["name"]["givenName"] == "Janet"

    assert okta.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"active": False}}]).json()["active"] \
        is False
    assert okta.get(f"/Users/{user['id']}").json()["active"] is False
    assert okta.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"active": True}}]).json()["active"] \
        is True
    password = okta.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"password": "n3w"}}])
    assert password.status_code == 200 and "password" not in password.json()


def test_okta_aiw_app_deactivates_and_reactivates_with_put(okta) -> None:
    user = okta.post("/Users", _realistic_user("aiw@example.com")).json()

    off = okta.put(f"/Users/{user['id']}", {**user, "active": False})
    on = okta.put(f"/Users/{user['id']}", {**user, "active": True})

    assert (off.json()["active"], on.json()["active"]) == (False, True)


def test_okta_group_push(okta, store) -> None:
    """Push Groups: POST with no members, then membership PATCHes (remove by filter, add),
    a no-path rename on each push, Refresh App Groups, and unlink with delete."""
    ann = okta.create_user("ann@example.com")
    bob = okta.create_user("bob@example.com")

    group = okta.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                  "displayName": "Engineering", "members": []}).json()
    okta.patch(f"/Groups/{group['id']}", [
        {"op": "replace", "value": {"id": group["id"], "displayName": "Engineering"}},
        {"op": "add", "path": "members", "value": [{"value": ann["id"], "display": "ann@example.com"},
                                                    {"value": bob["id"], "display": "bob@example.com"}]}])
    okta.patch(f"/Groups/{group['id']}", [
        {"op": "replace", "value": {"id": group["id"], "displayName": "Eng"}},
        {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'}])

    listed = okta.get("/Groups?startIndex=1&count=100").json()
    assert [(g["displayName"], [m["value"] for m in g["members"]]) for g in listed["Resources"]] == \
        [("Eng", [bob["id"]])]
    assert okta.get("/Groups", params={"filter": 'displayName eq "Eng"'}).json()["totalResults"] == 1
    assert okta.delete(f"/Groups/{group['id']}").status_code == 204
    assert okta.get(f"/Groups/{group['id']}").status_code == 404


def test_okta_full_member_resync_with_replace(okta, store) -> None:
    users = [okta.create_user(f"u{n}@example.com") for n in range(3)]
    group = okta.create_group("Ops", [users[0]["id"]])

    response = okta.patch(f"/Groups/{group['id']}", [
        {"op": "replace", "path": "members", "value": [{"value": u["id"]} for u in users[1:]]}])

    assert response.status_code == 204
    members = okta.get(f"/Groups/{group['id']}").json()["members"]
    assert sorted(m["value"] for m in members) == sorted(u["id"] for u in users[1:])


@pytest.mark.parametrize("field", ["email", "emails.value", 'emails[type eq "work"].value'])
def test_okta_unique_identifier_email_forms(okta, field: str) -> None:
    user = okta.create_user("ann@example.com")

    found = okta.get("/Users", params={"filter": f'{field} eq "ANN@example.com"', "startIndex": 1, "count": 100})

    assert [r["id"] for r in found.json()["Resources"]] == [user["id"]]
