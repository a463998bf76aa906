"""/Groups through HTTP: CRUD, both IdPs' membership forms, and the rules (R2-R7)."""

from __future__ import annotations

import pytest

from reconcile.admin import add_group, add_member, add_user
from reconcile.apply import apply
from store import Store, export_state, load_local_state

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _groups(store: Store) -> dict[str, dict]:
    with store.session() as session:
        return {g["name"]: g for g in export_state(session)["groups"]}


def _members(store: Store, name: str) -> list[str]:
    return sorted(_groups(store)[name]["members"])


def _local(store: Store, settings, make) -> None:
    with store.session() as session:
        local = load_local_state(session)
    apply(store, make(local, settings.rules.to_rules()), run_id=None)


def test_post_group_with_members(okta, store: Store) -> None:
    ann = okta.create_user("ann@example.com")

    group = okta.create_group("Sales", [ann["id"]])

    assert group["displayName"] == "Sales"
    assert [m["value"] for m in group["members"]] == [ann["id"]]
    assert _members(store, "Sales") == ["ann@example.com"]
    assert _groups(store)["Sales"]["managed_by"] == "okta"


def test_duplicate_group_name_in_the_same_directory_is_409(okta) -> None:
    okta.create_group("Sales")

    response = okta.post("/Groups", {"displayName": "SALES"})

    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"


@pytest.mark.parametrize(("name", "rule"), [
    ("A" * 25, "R2 (name-too-long)"),
    ("Administrators", "R3 (reserved-name)"),
    ("Аdministrators", "R3 (reserved-name)"),  # Cyrillic А
    ("   ", "R2 (empty-name)"),
])
def test_names_the_rules_refuse_are_400_with_the_rule(okta, name: str, rule: str) -> None:
    response = okta.post("/Groups", {"displayName": name, "members": []})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert response.json()["detail"].startswith(rule)


def test_split_administrators_maps_onto_administrators_and_keeps_its_members(okta, store: Store, settings) -> None:
    _local(store, settings, lambda local, rules: add_user(local, "root@example.com", None, rules))
    _local(store, settings, lambda local, rules: add_member(local, "Administrators", "root@example.com", rules))

    group = okta.create_group("Split_Administrators")

    assert group["displayName"] == "Split_Administrators" and group["members"] == []
    assert _groups(store)["Administrators"]["managed_by"] == "okta"
    assert _members(store, "Administrators") == ["root@example.com"]
    found = okta.get("/Groups", params={"filter": 'displayName eq "Split_Administrators"',
                                        "excludedAttributes": "members"}).json()
    assert [g["id"] for g in found["Resources"]] == [group["id"]] and "members" not in found["Resources"][0]


def test_a_same_name_local_group_is_linked_not_duplicated(okta, store: Store, settings) -> None:
    """R6."""
    _local(store, settings, lambda local, rules: add_group(local, "Sales", rules))

    response = okta.post("/Groups", {"displayName": "sales", "members": []})

    assert response.status_code == 201
    assert list(_groups(store)) == ["Sales"] and _groups(store)["Sales"]["managed_by"] == "okta"


def test_a_group_another_directory_manages_is_409(okta, entra) -> None:
    okta.create_group("Sales")

    response = entra.post("/Groups", {"displayName": "Sales"})

    assert response.status_code == 409 and "R6" in response.json()["detail"]


def test_okta_membership_patch_adds_and_removes_in_one_request(okta, store: Store) -> None:
    ann, bob = okta.create_user("ann@example.com"), okta.create_user("bob@example.com")
    group = okta.create_group("Sales", [ann["id"]])

    response = okta.patch(f"/Groups/{group['id']}", [
        {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": bob["id"], "display": "bob@example.com"}]},
    ])

    assert response.status_code == 204
    assert _members(store, "Sales") == ["bob@example.com"]


def test_entra_legacy_remove_with_a_value_removes_only_that_member(entra, store: Store) -> None:
    """research/scim.md pitfall 1: it must not remove every member."""
    users = [entra.create_user(f"u{n}@example.com") for n in range(3)]
    group = entra.create_group("Sales", [u["id"] for u in users])

    entra.patch(f"/Groups/{group['id']}", [{"op": "Remove", "path": "members",
                                            "value": [{"$ref": None, "value": users[1]["id"]}]}])

    assert _members(store, "Sales") == ["u0@example.com", "u2@example.com"]


def test_replace_members_sets_the_list(okta, store: Store) -> None:
    users = [okta.create_user(f"u{n}@example.com") for n in range(3)]
    group = okta.create_group("Sales", [users[0]["id"], users[1]["id"]])

    okta.patch(f"/Groups/{group['id']}", [{"op": "replace", "path": "members",
                                           "value": [{"value": users[1]["id"]}, {"value": users[2]["id"]}]}])

    assert _members(store, "Sales") == ["u1@example.com", "u2@example.com"]


def test_no_path_replace_renames(okta, store: Store) -> None:
    group = okta.create_group("Sales")

    okta.patch(f"/Groups/{group['id']}", [{"op": "replace", "value": {"id": group["id"], "displayName": "Revenue"}}])

    assert list(_groups(store)) == ["Revenue"]
    assert okta.get(f"/Groups/{group['id']}").json()["displayName"] == "Revenue"


def test_renaming_onto_a_taken_name_is_409(okta) -> None:
    okta.create_group("Sales")
    group = okta.create_group("Support")

    response = okta.patch(f"/Groups/{group['id']}", [{"op": "replace", "path": "displayName", "value": "sales"}])

    assert response.status_code == 409


def test_a_request_that_renames_and_changes_members_applies_as_one(okta, store: Store) -> None:
    ann = okta.create_user("ann@example.com")
    group = okta.create_group("Sales")

    okta.patch(f"/Groups/{group['id']}", [{"op": "replace", "path": "displayName", "value": "Revenue"},
                                          {"op": "add", "path": "members", "value": [{"value": ann["id"]}]}])

    assert _groups(store)["Revenue"]["members"] == ["ann@example.com"]


def test_aiw_put_replaces_name_and_members(okta, store: Store) -> None:
    ann, bob = okta.create_user("ann@example.com"), okta.create_user("bob@example.com")
    group = okta.create_group("Sales", [ann["id"]])

    response = okta.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "id": group["id"], "displayName": "Sales",
                                                   "members": [{"value": bob["id"]}]})

    assert response.status_code == 200
    assert [m["value"] for m in response.json()["members"]] == [bob["id"]]
    assert _members(store, "Sales") == ["bob@example.com"]


def test_members_that_are_not_users_of_the_directory_are_400(okta, entra) -> None:
    other = entra.create_user("ann@example.com")
    group = okta.create_group("Sales")

    for value in ("no-such-user", other["id"], group["id"]):
        response = okta.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members", "value": [{"value": value}]}])
        assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"


def test_duplicate_members_in_a_request_are_added_once(okta, store: Store) -> None:
    ann = okta.create_user("ann@example.com")

    okta.create_group("Sales", [ann["id"], ann["id"]])

    assert _members(store, "Sales") == ["ann@example.com"]


def test_delete_group_makes_it_local_with_its_members(okta, store: Store) -> None:
    """R7: groups are never deleted."""
    ann = okta.create_user("ann@example.com")
    group = okta.create_group("Sales", [ann["id"]])

    assert okta.delete(f"/Groups/{group['id']}").status_code == 204

    assert okta.get(f"/Groups/{group['id']}").status_code == 404
    assert _groups(store)["Sales"]["managed_by"] is None and _members(store, "Sales") == ["ann@example.com"]


def test_deactivating_a_user_keeps_their_groups_in_push_mode(okta, store: Store) -> None:
    ann = okta.create_user("ann@example.com")
    okta.create_group("Sales", [ann["id"]])

    okta.patch(f"/Users/{ann['id']}", [{"op": "replace", "value": {"active": False}}])

    assert _members(store, "Sales") == ["ann@example.com"]


def test_excluded_members_are_not_returned(okta) -> None:
    ann = okta.create_user("ann@example.com")
    group = okta.create_group("Sales", [ann["id"]])

    body = okta.get(f"/Groups/{group['id']}?excludedAttributes=members").json()

    assert "members" not in body and body["displayName"] == "Sales"


# --- R4 ----------------------------------------------------------------------------------------


@pytest.fixture
def admins(okta):
    ann = okta.create_user("ann@example.com")
    group = okta.create_group("Split_Administrators", [ann["id"]])
    return ann, group


def test_removing_the_last_active_admin_is_400_and_changes_nothing(okta, store: Store, admins) -> None:
    ann, group = admins
    bob = okta.create_user("bob@example.com", active=False)

    response = okta.patch(f"/Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": bob["id"]}]},
        {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'}])

    assert response.status_code == 400 and response.json()["detail"].startswith("R4")
    assert _members(store, "Administrators") == ["ann@example.com"]


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
def test_deactivating_the_last_active_admin_is_400_and_changes_nothing(okta, store: Store, admins, how: str) -> None:
    ann, _ = admins
    path = f"/Users/{ann['id']}"
    if how == "patch":
        response = okta.patch(path, [{"op": "replace", "value": {"active": False}}])
    elif how == "put":
        response = okta.put(path, {**ann, "active": False})
    else:
        response = okta.delete(path)

    assert response.status_code == 400 and "R4" in response.json()["detail"]
    assert okta.get(path).json()["active"] is True
    assert _members(store, "Administrators") == ["ann@example.com"]


def test_r4_refusal_is_in_the_provisioning_log(okta, store: Store, admins) -> None:
    ann, _ = admins
    okta.patch(f"/Users/{ann['id']}", [{"op": "replace", "value": {"active": False}}])

    from store import list_events, list_runs

    with store.session() as session:
        events = list_events(session, list_runs(session)[0].id)
    assert (events[-1].action, events[-1].outcome, events[-1].reason) == \
        ("deactivate-user", "conflict", "admin-group-would-be-empty")
