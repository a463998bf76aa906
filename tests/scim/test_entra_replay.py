"""Microsoft Entra's provisioning requests (research/scim.md §3), in both PATCH dialects:
the default one (capitalised ops, string booleans, `remove members` with a value) and the
`aadOptscim062020` one (RFC ops, no-path replace with dotted and URN keys)."""

from __future__ import annotations

import uuid

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def _entra_user(email: str) -> dict:
    return {"schemas": [USER, ENTERPRISE], "externalId": email.split("@")[0], "userName": email, "active": True,
            "addresses": [{"primary": True, "type": "work", "country": "US", "postalCode": None}],
            "displayName": "Jordan Young", "emails": [{"primary": True, "type": "work", "value": email}],
            "meta": {"resourceType": "User"}, "name": {"familyName": "Young", "givenName": "Jordan"},
            "roles": [], "title": "Engineer", "department": "Sales",
            ENTERPRISE: {"employeeNumber": "701984", "department": "Sales", "manager": {"value": "x"}}}


def test_test_connection_queries_a_random_guid_and_gets_an_empty_list(entra) -> None:
    response = entra.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'})

    assert response.status_code == 200
    assert response.json()["totalResults"] == 0 and response.json()["Resources"] == []


def test_entra_creates_users_with_extra_schemas_and_unknown_attributes(entra) -> None:
    assert entra.get("/Users", params={"filter": 'userName eq "jyoung@contoso.com"'}).json()["totalResults"] == 0

    response = entra.post("/Users", _entra_user("jyoung@Contoso.com"))

    assert response.status_code == 201
    body = response.json()
    assert body["userName"] == "jyoung@Contoso.com"  # stored as sent
    assert body["externalId"] == "jyoung"
    assert entra.get("/Users", params={"filter": 'externalId eq "jyoung"'}).json()["totalResults"] == 1


def test_default_dialect_user_updates(entra) -> None:
    user = entra.post("/Users", _entra_user("jyoung@contoso.com")).json()

    response = entra.patch(f"/Users/{user['id']}", [
        {"op": "Replace", "path": "displayName", "value": "Jordan Y."},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "jordan@contoso.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Jordan"},
        {"op": "Replace", "path": "name.familyName", "value": "Yo"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "42"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "some-manager-id"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
        {"op": "Add", "path": "nickName", "value": "Babs"},
    ])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["displayName"] == "Jordan Y." and body["name"] == {"givenName": "Jordan", "familyName": "Yo"}
    assert body["userName"] == "jyoung@contoso.com"  # the key is userName, not the work email


def test_compliant_dialect_no_path_replace_with_dotted_and_urn_keys(entra) -> None:
    user = entra.post("/Users", _entra_user("jyoung@contoso.com")).json()

    response = entra.patch(f"/Users/{user['id']}", [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "jyoung@contoso.com"},
        {"op": "replace", "value": {"displayName": "JY", "name.givenName": "J", "name.familyName": "Y",
                                    f"{ENTERPRISE}:employeeNumber": "7",
                                    f"{USER}:userName": "jordan.young@contoso.com"}},
    ])

    body = response.json()
    assert (body["displayName"], body["name"]["givenName"], body["userName"]) == \
        ("JY", "J", "jordan.young@contoso.com")


@pytest.mark.parametrize("value", ["False", "false", False])
def test_disable_in_both_dialects(entra, value: object) -> None:
    user = entra.post("/Users", _entra_user("jyoung@contoso.com")).json()
    op = "Replace" if isinstance(value, str) else "replace"

    response = entra.patch(f"/Users/{user['id']}", [{"op": op, "path": "active", "value": value}])

    assert response.status_code == 200 and response.json()["active"] is False


def test_groups_with_extra_schema_matching_by_name_and_both_member_removals(entra, store) -> None:
    users = [entra.post("/Users", _entra_user(f"u{n}@contoso.com")).json() for n in range(3)]
    lookup = entra.get("/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "Sales"'})
    assert lookup.json()["totalResults"] == 0

    group = entra.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", ADSCIM],
                                   "externalId": "8aa1a0c0", "displayName": "Sales", "members": [],
                                   "meta": {"resourceType": "Group"}}).json()
    assert entra.patch(f"/Groups/{group['id']}", [{"op": "Add", "path": "members", "value": [
        {"$ref": None, "value": u["id"]} for u in users]}]).status_code == 204

    entra.patch(f"/Groups/{group['id']}", [{"op": "Remove", "path": "members",
                                            "value": [{"$ref": None, "value": users[0]["id"]}]}])
    entra.patch(f"/Groups/{group['id']}", [{"op": "remove", "path": f'members[value eq "{users[1]["id"]}"]'}])

    found = entra.get("/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "Sales"'})
    assert [g["id"] for g in found.json()["Resources"]] == [group["id"]]
    assert "members" not in found.json()["Resources"][0]
    assert [m["value"] for m in entra.get(f"/Groups/{group['id']}").json()["members"]] == [users[2]["id"]]


def test_hard_deleted_user_is_deleted_with_delete(entra) -> None:
    user = entra.post("/Users", _entra_user("jyoung@contoso.com")).json()

    assert entra.delete(f"/Users/{user['id']}").status_code == 204

    assert entra.get(f"/Users/{user['id']}").status_code == 404


def test_entra_group_with_the_alias_maps_onto_administrators(entra, store) -> None:
    ann = entra.post("/Users", _entra_user("ann@contoso.com")).json()

    group = entra.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", ADSCIM],
                                   "displayName": "Split_Administrators", "members": []}).json()
    entra.patch(f"/Groups/{group['id']}", [{"op": "Add", "path": "members", "value": [{"value": ann["id"]}]}])

    from store import export_state

    with store.session() as session:
        groups = {g["name"]: g for g in export_state(session)["groups"]}
    assert groups["Administrators"]["members"] == ["ann@contoso.com"]
    assert groups["Administrators"]["managed_by"] == "entra"
